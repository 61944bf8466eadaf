"""Execute notebooks in place and store their outputs, one kernel per notebook.

    python scripts/execute_notebooks.py book/06_lenet.ipynb book/07_vgg.ipynb

Each notebook runs with its own folder as the working directory, in full mode unless
CNN_QUICK is set. A failing notebook keeps its previous file and the run goes on with the
next; the exit status is 1 if any failed. Prints each notebook's wall time.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def execute(path: Path, timeout: int, out: Path | None) -> tuple[bool, float, str]:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        return False, time.perf_counter() - start, str(exc).splitlines()[-1][:300]
    except Exception as exc:  # noqa: BLE001 - kernel died, timeout: the next one goes on
        return False, time.perf_counter() - start, f"{type(exc).__name__}: {exc}"[:300]
    target = out / path.name if out else path
    nbformat.write(nb, target)
    return True, time.perf_counter() - start, ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("notebooks", nargs="+", type=Path)
    p.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    p.add_argument("--out", type=Path, help="write executed copies here instead of in place")
    args = p.parse_args(argv)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in args.notebooks:
        ok, seconds, why = execute(path.resolve(), args.timeout, args.out)
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {path}  {seconds:6.1f} s  {why}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
