"""Writing an export so that nothing is ever half-written.

Everything is built in a temporary folder beside the destination first; only when all of
it is complete is each piece (a file, or a leaf folder such as nbgrader's
``feedback/<student>/<assignment>``) renamed into place, replacing an older copy. A failure
while building leaves the destination as it was.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["Staging"]


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


class Staging:
    """``with Staging(dest) as s:`` write under ``s.root``, name each piece with
    ``s.piece(rel)``; on a clean exit the pieces are moved into ``dest``."""

    def __init__(self, dest: Path):
        self.dest = Path(dest)
        self.pieces: list[Path] = []
        self.root = Path()

    def __enter__(self) -> "Staging":
        base = _existing_ancestor(self.dest.parent)
        self.root = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.export-tmp-", dir=base))
        return self

    def piece(self, rel: str | Path) -> Path:
        """The staging path of ``rel`` (its parent folders made); it is moved as one."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.pieces.append(Path(rel))
        return path

    def write(self, rel: str | Path, data: str | bytes) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        self.piece(rel).write_bytes(raw)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _commit(self) -> None:
        self.dest.mkdir(parents=True, exist_ok=True)
        for rel in self.pieces:
            src, target = self.root / rel, self.dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir() and target.is_dir():
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                os.replace(target, old)
                os.replace(src, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(src, target)
