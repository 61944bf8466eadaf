"""Finding submissions: notebooks, folders (nbgrader's ``submitted/`` layout too) and zips.

Every problem with one input becomes an error on that submission, never an exception that
stops the run. Zip archives are unpacked by hand: an entry whose path escapes the folder,
is absolute or is a link is skipped and reported on its own (the rest of the archive is
graded), and an archive that would inflate beyond the limits is refused whole before
anything of it is written.
"""
from __future__ import annotations

import hashlib
import os
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from ..late import FROM_NBGRADER, FROM_ZIP, nbgrader_time
from .notebook import MAX_NOTEBOOK_BYTES

__all__ = ["Submission", "collect", "safe_file_name", "ZIP_LIMITS"]

ZIP_LIMITS = {"entries": 5000, "total_bytes": 512 << 20, "ratio": 200}


@dataclass(frozen=True)
class Submission:
    """One student's notebook (bytes), or why it could not be read."""

    student_id: str
    origin: str
    data: bytes | None = None
    error: str | None = None
    duplicate: bool = False    # another input already claimed this student id
    timestamp: datetime | None = None   # when it was handed in, where that is known
    timestamp_source: str = ""          # where the time came from (late.FROM_*)

    @property
    def key(self) -> str:
        """Where this submission's result is filed: its student id, unless a duplicate."""
        return f"{self.student_id} <- {self.origin}" if self.duplicate else self.student_id


def safe_file_name(student_id: str) -> str:
    """A file name for a student id: no separators, control characters or leading dots."""
    name = "".join("_" if c in "/\\\0" or unicodedata.category(c).startswith("C") else c
                   for c in unicodedata.normalize("NFC", student_id)).strip()
    name = name.lstrip(".") or "_"
    if len(name) > 120:  # two long ids that share a prefix must not share a file
        name = name[:100] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return name


def _read(path: Path, origin: str, student_id: str) -> Submission:
    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            return Submission(student_id, origin, error="is a symbolic link; links are not "
                                                        "followed")
        if not stat.S_ISREG(st.st_mode):
            return Submission(student_id, origin, error="is not a regular file")
        with open(path, "rb") as f:
            data = f.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as exc:
        return Submission(student_id, origin, error=f"could not be read: {exc.strerror}")
    return Submission(student_id, origin, data)


def _notebooks(folder: Path) -> list[Path]:
    """The notebooks in ``folder``, and HTML exports of notebooks (nbconvert --to html)
    that have no .ipynb of the same name beside them."""
    files = [p for p in folder.iterdir() if not p.name.startswith(".") and not p.is_dir()]
    stems = {p.stem for p in files if p.suffix == ".ipynb"}
    return sorted(p for p in files if p.suffix == ".ipynb"
                  or (p.suffix.lower() in (".html", ".htm") and p.stem not in stems))


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()
                  and not p.name.startswith((".", "__MACOSX")))


def _pick(notebooks: list[Path], notebook_name: str) -> Path | None:
    named = [p for p in notebooks if p.name == notebook_name] or \
        [p for p in notebooks if p.stem == Path(notebook_name).stem]
    return named[0] if named else notebooks[0] if len(notebooks) == 1 else None


def _from_folder(folder: Path, label: str, assignment_id: str,
                 notebook_name: str) -> list[Submission]:
    """nbgrader layout (<student>/<assignment>/*.ipynb), flat notebooks, or one per folder."""
    if (folder / "submitted").is_dir():
        folder, label = folder / "submitted", f"{label}/submitted"
    subs: list[Submission] = [_read(p, f"{label}/{p.name}", p.stem) for p in _notebooks(folder)]
    subdirs = _subfolders(folder)
    if not subs and len(subdirs) == 1 and not (subdirs[0] / assignment_id).is_dir():
        nested = _from_folder(subdirs[0], f"{label}/{subdirs[0].name}", assignment_id,
                              notebook_name)  # a zip's single top-level folder
        if nested:
            return nested
    for sub in subdirs:
        target = sub / assignment_id if (sub / assignment_id).is_dir() else sub
        where = f"{label}/{target.relative_to(folder)}"
        notebooks = _notebooks(target)
        if not notebooks:
            continue
        chosen = _pick(notebooks, notebook_name)
        if chosen is None:
            subs.append(Submission(sub.name, where, error=f"has {len(notebooks)} notebooks and "
                                   f"none is named {notebook_name}"))
        else:
            subs.append(_stamped(_read(chosen, f"{where}/{chosen.name}", sub.name), target))
    return subs


def _stamped(sub: Submission, folder: Path) -> Submission:
    """The time in nbgrader's ``timestamp.txt`` beside the notebook, where there is one."""
    stamp = folder / "timestamp.txt"
    try:
        when = nbgrader_time(stamp.read_text(errors="replace")[:200]) \
            if stamp.is_file() and not stamp.is_symlink() else None
    except OSError:
        when = None
    return replace(sub, timestamp=when, timestamp_source=FROM_NBGRADER) if when else sub


def _zip_times(subs: list[Submission], label: str, infos: list) -> list[Submission]:
    """The zip entry's own time for each notebook that has no other (read as UTC: a zip
    stores no time zone)."""
    times = {info.filename.replace("\\", "/"): info.date_time for info in infos}
    out = []
    for sub in subs:
        entry = sub.origin[len(label) + 1:] if sub.origin.startswith(label + "/") else None
        when = times.get(entry) if entry and sub.timestamp is None else None
        if when and when[0] >= 1981:  # 1980-01-01 is zip's "no date"
            sub = replace(sub, timestamp=datetime(*when, tzinfo=timezone.utc),
                          timestamp_source=FROM_ZIP)
        out.append(sub)
    return out


def _unsafe_entry(info: zipfile.ZipInfo) -> str | None:
    """Why one entry must not be unpacked (absolute, leaves the folder, a link), or None."""
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    if ".." in parts:
        return "is a path that leaves the archive's folder (..)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if "\0" in name:
        return "has a null byte in its name"
    return None


def _check_zip(archive: zipfile.ZipFile) -> str | None:
    """Why the whole archive is refused (too many entries, too large, a bomb), or None."""
    infos = archive.infolist()
    if len(infos) > ZIP_LIMITS["entries"]:
        return f"has {len(infos)} entries, over the limit of {ZIP_LIMITS['entries']}"
    total = 0
    for info in infos:
        name = info.filename
        total += info.file_size
        if info.compress_size and info.file_size / info.compress_size > ZIP_LIMITS["ratio"] \
                and info.file_size > 1 << 20:
            return (f"entry {name!r} would inflate {info.file_size // info.compress_size}-fold "
                    "(a zip bomb?); refused")
    if total > ZIP_LIMITS["total_bytes"]:
        return (f"would unpack to {total >> 20} MiB, over the "
                f"{ZIP_LIMITS['total_bytes'] >> 20} MiB limit")
    return None


def _extract(archive: zipfile.ZipFile, dest: Path) -> None:
    """Unpack regular files only, counting real bytes (the sizes in headers can lie)."""
    budget = ZIP_LIMITS["total_bytes"]
    for info in archive.infolist():
        if _unsafe_entry(info):
            continue
        target = dest.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
        if not str(target.resolve()).startswith(str(dest.resolve()) + os.sep):
            raise ValueError(f"entry {info.filename!r} leaves the folder")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as src, open(target, "xb") as out:
            while chunk := src.read(1 << 20):
                budget -= len(chunk)
                if budget < 0:
                    raise ValueError("it unpacks to more than the size limit (a zip bomb?)")
                out.write(chunk)


def _from_zip(path: Path, workdir: Path, index: int, assignment_id: str,
              notebook_name: str) -> list[Submission]:
    infos: list[zipfile.ZipInfo] = []
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            problem = _check_zip(archive)
            if problem is None:
                dest = workdir / f"zip{index}"
                dest.mkdir(parents=True)
                _extract(archive, dest)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        problem = f"could not be unpacked: {exc}"
    if problem:
        return [Submission(path.stem, str(path), error=f"the zip file {problem}")]
    skipped = [Submission(info.filename, f"{path}:{info.filename}", error=f"the entry "
                          f"{info.filename!r} of {path.name} {why}; it was not unpacked")
               for info in infos for why in [_unsafe_entry(info)] if why]
    return _zip_times(_from_folder(dest, str(path), assignment_id, notebook_name),
                      str(path), infos) + skipped


def collect(paths: list[Path], assignment_id: str, notebook_name: str,
            workdir: Path) -> list[Submission]:
    """All submissions under ``paths``, in order; a repeated student id becomes an error."""
    subs: list[Submission] = []
    for index, path in enumerate(paths):
        if path.is_symlink() and not path.exists():
            subs.append(Submission(path.stem, str(path), error="is a broken symbolic link"))
        elif path.is_dir():
            subs.extend(_from_folder(path, str(path), assignment_id, notebook_name))
        elif path.suffix.lower() == ".zip":
            subs.extend(_from_zip(path, workdir, index, assignment_id, notebook_name))
        else:
            subs.append(_read(path, str(path), path.stem))
    seen: dict[str, str] = {}
    out = []
    # One person, one id: the same name typed on different systems (a Korean name from a
    # Mac zip arrives decomposed, NFD) is the same student.
    subs = [replace(s, student_id=unicodedata.normalize("NFC", s.student_id)) for s in subs]
    for s in subs:
        key = safe_file_name(s.student_id).casefold()
        if key in seen:
            s = Submission(s.student_id, s.origin, error=f"duplicate student id "
                           f"{s.student_id!r} (already taken by {seen[key]}); rename one "
                           "file and grade it again", duplicate=True)
        else:
            seen[key] = s.origin
        out.append(s)
    return out
