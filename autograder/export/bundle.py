"""``python -m autograder bundle gradescope``: the zip Gradescope's autograder takes.

Gradescope unpacks it into ``/autograder/source``, runs ``setup.sh`` once when it builds
the image, copies ``run_autograder`` to ``/autograder/run_autograder`` and runs it for each
submission (in ``/autograder/submission``); the result goes to
``/autograder/results/results.json``. The zip holds the grader and the course package
(``course/``: ``autograder/``, ``cnncourse/``, the assignment's source notebook and the
grader's catalogs), ``bundle.json`` (what to grade) and the pinned requirements.

``AUTOGRADER_ROOT`` replaces ``/autograder``; ``AUTOGRADER_PYTHON`` names the interpreter
``run_autograder`` uses instead of the one ``setup.sh`` installs (tests use the checkout's
venv, so they need no network).
"""
from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import zipfile
from pathlib import Path

from ..errors import UsageError

__all__ = ["build", "SETUP_SH", "RUN_AUTOGRADER", "GRADING_REQUIREMENTS"]

COURSE = Path(__file__).resolve().parents[2]
# What grading imports (autograder/ and cnncourse/), pinned as in requirements.txt; torch
# comes from PyTorch's CPU index on Gradescope's CPU-only machines.
GRADING_REQUIREMENTS = ("torch", "torchvision", "numpy", "matplotlib", "pillow", "ipython")

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, on its Ubuntu image, when it builds the autograder.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# bubblewrap: the strongest sandbox; libseccomp2: the system-call filter; curl for uv
apt-get install -y --no-install-recommends bubblewrap libseccomp2 ca-certificates curl \
    python3 python3-venv
python3 -m venv "$ROOT/uv-env"
"$ROOT/uv-env/bin/pip" install --quiet "uv==0.13.8"
# the course's Python (3.11) and its pinned grading requirements, from PyPI / PyTorch's
# index; the interpreter lives under $ROOT, not root's home, which the sandbox's
# unprivileged uid cannot enter
export UV_PYTHON_INSTALL_DIR="$ROOT/python"
"$ROOT/uv-env/bin/uv" venv --python 3.11 "$ROOT/venv"
VIRTUAL_ENV="$ROOT/venv" "$ROOT/uv-env/bin/uv" pip install \
    --extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match \
    -r "$ROOT/source/requirements-grading.txt"
chmod -R a+rX "$ROOT/python" "$ROOT/venv" "$ROOT/source"  # the sandbox's uid runs them
chmod -R go-rwx "$ROOT/source/course/solutions"  # but never reads the source notebook
# Fashion-MNIST for the training part, and the reference training run, once, here
mkdir -p "$ROOT/data" "$ROOT/cache"
cd "$ROOT/source/course"
CNN_DATA="$ROOT/data" PYTHONPATH="$ROOT/source/course" "$ROOT/venv/bin/python" -c \
    "from cnncourse.data import FashionMNIST; FashionMNIST(root='$ROOT/data')"
chmod -R a+rX "$ROOT/data"
# grade the source notebook once: checks the installation and caches the reference run
CNN_DATA="$ROOT/data" CNN_AUTOGRADER_CACHE="$ROOT/cache" PYTHONPATH="$ROOT/source/course" \
    "$ROOT/venv/bin/python" -m autograder.export.gradescope_run --root "$ROOT" \
    --config "$ROOT/source/bundle.json" --warm
chmod -R a+rX "$ROOT/cache"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for each submission: grades $ROOT/submission/*.ipynb into
# $ROOT/results/results.json.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
export PYTHONPATH="$ROOT/source/course"
export CNN_DATA="${CNN_DATA:-$ROOT/data}"
export CNN_AUTOGRADER_CACHE="${CNN_AUTOGRADER_CACHE:-$ROOT/cache}"
cd "$ROOT/source/course"
exec "$PYTHON" -m autograder.export.gradescope_run --root "$ROOT" \
    --config "$ROOT/source/bundle.json"
"""


def _requirements() -> str:
    pins = {}
    for line in (COURSE / "requirements.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)$", line.strip())
        if m:
            pins[m.group(1).lower()] = line.strip()
    missing = [n for n in GRADING_REQUIREMENTS if n not in pins]
    if missing:
        raise UsageError(f"requirements.txt pins no version of {', '.join(missing)}")
    return "".join(pins[n] + "\n" for n in GRADING_REQUIREMENTS)


def _course_files(assignment) -> list[tuple[Path, str]]:
    files = []
    for package in ("autograder", "cnncourse"):
        files += [(p, f"course/{p.relative_to(COURSE)}") for p in
                  sorted((COURSE / package).rglob("*.py")) if "__pycache__" not in p.parts]
    files.append((assignment.source_path(COURSE),
                  f"course/{assignment.source_path(COURSE).relative_to(COURSE)}"))
    files += [(p, f"course/{p.relative_to(COURSE)}") for p in
              sorted((COURSE / "locale").glob("*/LC_MESSAGES/autograder.po"))]
    return files


def _add(z: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, data)


def build(assignment_id: str, out: Path, parts: str | None = None, profile: str | None = None,
          hidden_visibility: str = "after_published") -> Path:
    """Write the autograder zip to ``out`` (via a temporary name); returns its path."""
    from ..assignments import get_assignment

    try:
        assignment = get_assignment(assignment_id)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    chosen = [p.strip() for p in (parts or "").split(",") if p.strip()]
    unknown = [p for p in chosen if p not in {q.name for q in assignment.parts}]
    if unknown:
        raise UsageError(f"unknown part(s) for {assignment_id}: {', '.join(unknown)}")
    config = {"assignment": assignment_id, "notebook": assignment.notebook,
              "parts": chosen or None, "profile": profile,
              "hidden_visibility": hidden_visibility}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.tmp-", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w") as z:
            _add(z, "setup.sh", SETUP_SH.encode(), executable=True)
            _add(z, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
            _add(z, "bundle.json", (json.dumps(config, indent=1) + "\n").encode())
            _add(z, "requirements-grading.txt", _requirements().encode())
            for path, name in _course_files(assignment):
                _add(z, name, path.read_bytes())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
