"""Time the autograder against ``nbgrader autograde`` on the same class of submissions.

Makes N submissions (default 100) from the solution, the untouched release and the
outcome-named fixtures (typical mistakes; see ``_NOT_TYPICAL`` for those left out), then
times, as wall-clock seconds of the whole command:

* ``python -m autograder grade --jobs 1`` and ``--jobs 2`` (start-up included), and
* ``nbgrader autograde`` on a sample of the same submissions, extrapolated to N (it runs
  one notebook after another in a fresh kernel each, so its time grows linearly).

Usage: ``.venv/bin/python bench/bench_grading.py [--n 100] [--nbgrader-sample 8]``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions/assignment1/assignment1.ipynb"
RELEASE = ROOT / "exercises/assignment1/assignment1.ipynb"
FIXTURES = ROOT / "tests/fixtures/assignment1"
# Left out of the class: the hangs only measure the time limit, and importing d2l
# (seconds per part) is a test of d2l's own code, not a typical submission.
_NOT_TYPICAL = ("corr2d__endless_loop", "corr2d__hangs", "d2l__")


def make_class(folder: Path, n: int, distinct: bool = True) -> list[Path]:
    """N notebooks in nbgrader's submitted/<student>/assignment1/ layout; returns them.

    ``distinct``: add a comment naming the student to every answer cell, so no two
    submissions share code (as in a real class) and the grader cannot reuse a training run.
    """
    variants = [SOLUTION] * 4 + [RELEASE] + sorted(
        p for p in FIXTURES.glob("*.ipynb") if not p.name.startswith(_NOT_TYPICAL))
    paths = []
    for i in range(n):
        dest = folder / "submitted" / f"student{i:03d}" / "assignment1" / "assignment1.ipynb"
        dest.parent.mkdir(parents=True)
        nb = json.loads(variants[i % len(variants)].read_text())
        if distinct:
            for cell in nb["cells"]:
                if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                    cell["source"] = ["".join(cell["source"]) + f"\n# student{i:03d}\n"]
        dest.write_text(json.dumps(nb))
        paths.append(dest)
    return paths


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds


def time_autograder(subs: Path, out: Path, jobs: int, extra: list[str]) -> tuple[float, dict]:
    seconds = run([sys.executable, "-m", "autograder", "grade", "--assignment", "assignment1",
                   "--out", str(out), "--jobs", str(jobs), *extra, str(subs)], ROOT)
    data = json.loads((out / "results.json").read_text())
    return seconds, data


def time_nbgrader(course: Path, sample: list[Path]) -> float:
    """nbgrader autograde on ``sample`` (in its own course folder), in seconds."""
    shutil.copytree(ROOT / "solutions", course / "solutions")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for p in sample:
        dest = course / "submitted" / p.parents[1].name / "assignment1"
        dest.mkdir(parents=True)
        shutil.copy(p, dest / p.name)
    env = dict(os.environ, CNN_QUICK="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    db = f"--db=sqlite:///{course / 'gradebook.db'}"
    nbgrader = [sys.executable, "-m", "nbgrader"]
    run([*nbgrader, "generate_assignment", "assignment1", "--force", db], course, env)
    return run([*nbgrader, "autograde", "assignment1", "--force", db], course, env)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{cpu}; {os.cpu_count()} cores; load average {load} at start"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="submissions (default 100)")
    parser.add_argument("--nbgrader-sample", type=int, default=8,
                        help="submissions nbgrader autograde really runs (default 8)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-nbgrader", action="store_true",
                        help="time only the autograder (a machine without nbgrader)")
    parser.add_argument("--training", choices=("off", "on"), default="off",
                        help="grade the residual_training part too (default off: the three "
                             "function/block parts only)")
    parser.add_argument("--profile", choices=("quick", "full"), default="full",
                        help="the training part's profile (full: GPU or CPU profile)")
    parser.add_argument("--same-code", action="store_true",
                        help="let submissions share code (default: each one is distinct)")
    args = parser.parse_args()
    extra = ["--profile", args.profile]
    if args.training == "off":
        extra += ["--parts", "corr2d,pool2d,residual"]
    print(f"# bench_grading: {args.n} submissions, {datetime.datetime.now():%Y-%m-%d %H:%M}")
    print(f"# machine: {machine()}")
    print(f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"# training part: {args.training} (profile {args.profile}); submissions "
          f"{'may share' if args.same_code else 'never share'} code")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        paths = make_class(tmp / "class", args.n, distinct=not args.same_code)
        for jobs in args.jobs:
            seconds, data = time_autograder(tmp / "class" / "submitted", tmp / f"out{jobs}", jobs,
                                            extra)
            graded = sum(s["error"] is None for s in data["submissions"])
            timing = data["timing"]
            train = data.get("profile", {}).get("training")
            rows.append((f"autograder --jobs {jobs}", args.n, seconds, "measured",
                         f"{graded} graded; worker start-up {timing['worker_startup_s']} s; "
                         f"isolation {data['isolation']['method']}"
                         + (f"; training {train['profile']} on {train['device']}, reference "
                            f"{train['reference_seconds']} s" if train else "")))
        if not args.no_nbgrader:
            sample = paths[:args.nbgrader_sample]
            seconds = time_nbgrader(tmp / "course", sample)
            rows.append(("nbgrader autograde", args.n, seconds * args.n / len(sample),
                         f"extrapolated from {len(sample)}",
                         f"{seconds:.1f} s for {len(sample)} notebooks"))
    reference = rows[-1][2] if not args.no_nbgrader else float("nan")
    print()
    print(f"| {'grader':<22} | {'submissions':>11} | {'wall s':>8} | {'s/submission':>12} | "
          f"{'nbgrader / this':>15} | {'how':<22} | notes")
    print(f"|{'-' * 24}|{'-' * 13}|{'-' * 10}|{'-' * 14}|{'-' * 17}|{'-' * 24}|------")
    for name, n, seconds, how, notes in rows:
        print(f"| {name:<22} | {n:>11} | {seconds:>8.1f} | {seconds / n:>12.3f} | "
              f"{reference / seconds:>15.1f} | {how:<22} | {notes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
