"""Distinct submissions per hour: this machine's executor against Dask, training off and on.

For each setting it grades a class of distinct submissions (every answer cell carries a
comment naming its student, so no training run can be reused) with the whole command,
start-up included:

* ``--executor local --jobs 1`` and ``--jobs 2`` (the baseline, measured in the same run);
* ``--executor dask`` with a ``LocalCluster`` of 1 and 2 worker processes.

It prints submissions per hour and the Dask overhead as a ratio of wall times to the local
executor with as many workers. The reference training run is made once before the timed
runs (a shared ``CNN_AUTOGRADER_CACHE``), as a term's runs share it.

Usage: ``.venv/bin/python bench/bench_scale.py [--n 100] [--n-training 10]``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_grading import ROOT, machine, make_class, run  # noqa: E402

SETTINGS = [("local", 1), ("local", 2), ("dask", 1), ("dask", 2)]


def grade(subs: Path, out: Path, executor: str, jobs: int, training: bool,
          env: dict, isolation: str) -> tuple[float, dict]:
    parts = [] if training else ["--parts", "corr2d,pool2d,residual"]
    seconds = run([sys.executable, "-m", "autograder", "grade", "--assignment", "assignment1",
                   "--out", str(out), "--jobs", str(jobs), "--profile", "quick",
                   "--isolation", isolation, "--executor", executor, *parts, str(subs)],
                  ROOT, env)
    return seconds, json.loads((out / "results.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100,
                        help="submissions with the training part off (default 100)")
    parser.add_argument("--n-training", type=int, default=10,
                        help="submissions with the training part on (default 10)")
    parser.add_argument("--isolation", default="auto",
                        help="the same isolation method for every run (default: the "
                             "strongest available; each row records which)")
    parser.add_argument("--skip-training", action="store_true",
                        help="only the runs with the training part off")
    parser.add_argument("--only-training", action="store_true",
                        help="only the runs with the training part on")
    args = parser.parse_args()
    print(f"# bench_scale, {datetime.datetime.now():%Y-%m-%d %H:%M}")
    print(f"# machine: {machine()}")
    print(f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, CNN_AUTOGRADER_CACHE=str(tmp / "cache"))
        runs = ([] if args.only_training else [(False, args.n)]) + (
            [] if args.skip_training else [(True, args.n_training)])
        for training, n in runs:
            subs = tmp / f"class-{n}-{training}"
            make_class(subs, n)
            if training:  # the reference run, once, outside the timings
                warm = tmp / "warm"
                make_class(warm, 1)
                grade(warm / "submitted", tmp / "warm-out", "local", 1, True, env,
                      args.isolation)
            base = {}
            for executor, jobs in SETTINGS:
                out = tmp / f"out-{executor}-{jobs}-{training}"
                seconds, data = grade(subs / "submitted", out, executor, jobs, training, env,
                                      args.isolation)
                graded = sum(s["error"] is None for s in data["submissions"])
                if executor == "local":
                    base[jobs] = seconds
                ratio = seconds / base[jobs] if jobs in base else float("nan")
                rows.append((training, executor, jobs, n, graded, seconds, ratio,
                             data["timing"]["worker_startup_s"], data["isolation"]["method"]))
    print()
    print("| training | executor | workers | submissions | graded | wall s | per hour | "
          "wall / local | start-up s | isolation |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for training, executor, jobs, n, graded, seconds, ratio, startup, method in rows:
        print(f"| {'on' if training else 'off'} | {executor} | {jobs} | {n} | {graded} | "
              f"{seconds:.1f} | {n / seconds * 3600:,.0f} | {ratio:.2f} | {startup:.1f} | "
              f"{method} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
