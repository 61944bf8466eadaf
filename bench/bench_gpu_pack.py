"""Distinct submissions per hour with the training part on one GPU: 1, 2, 4 and 8 sandboxed
training jobs packed on it, each with the step eager and captured as a CUDA graph.

For each setting it grades the same class of distinct submissions (every answer cell names
its student, so no training run is reused) with the whole command, start-up included:
``grade --jobs K --gpu-jobs K`` with ``CNN_CUDA_GRAPH=0`` (eager) and ``=1`` (graph). The
reference run is made once per step mode before the timed runs (a shared
``CNN_AUTOGRADER_CACHE``), as a term's runs share it. The baseline is eager with one job,
measured in the same run; each row's ratio is its submissions per hour over the baseline's,
and the projection is the hours a class of 1,000 distinct submissions would take.

Usage (a GPU lease, see ``bench/device_run.sh``)::

    python bench/bench_gpu_pack.py --n 48 --jobs 1,2,4,8 --json OUT.json

``--profile quick`` runs the same table on the CPU (the check that the script works).
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

CLASS = 1000  # the class size the projection is for


def grade(subs: Path, out: Path, jobs: int, profile: str, env: dict) -> tuple[float, dict]:
    seconds = run([sys.executable, "-m", "autograder", "grade", "--assignment", "assignment1",
                   "--out", str(out), "--jobs", str(jobs), "--gpu-jobs", str(jobs),
                   "--profile", profile, str(subs)], ROOT, env)
    return seconds, json.loads((out / "results.json").read_text())


def _training(data: dict) -> tuple[int, int, float]:
    """(training parts that passed, that fell back to eager, mean training seconds)."""
    passed, seconds = 0, []
    for sub in data["submissions"]:
        for part in sub.get("parts", []):
            if part["name"] == "residual_training":
                passed += part["score"] == part["max_score"]
                seconds.append(part.get("seconds") or 0.0)
    fell = sum("CUDA graph" in (p.get("feedback") or "") for s in data["submissions"]
               for p in s.get("parts", []) if p["name"] == "residual_training")
    return passed, fell, sum(seconds) / max(1, len(seconds))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48, help="distinct submissions (default 48)")
    parser.add_argument("--jobs", default="1,2,4,8", help="jobs packed on the GPU")
    parser.add_argument("--modes", default="eager,graph", help="eager, graph or both")
    parser.add_argument("--profile", default="full", choices=["full", "quick"])
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    print(f"# bench_gpu_pack, {datetime.datetime.now():%Y-%m-%d %H:%M}")
    print(f"# machine: {machine()}")
    print(f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-pack-") as tmp:
        tmp = Path(tmp)
        subs = tmp / "class"
        make_class(subs, args.n)
        modes = args.modes.split(",")
        envs = {mode: dict(os.environ, CNN_AUTOGRADER_CACHE=str(tmp / "cache"),
                           CNN_CUDA_GRAPH="1" if mode == "graph" else "0") for mode in modes}
        for mode in modes:  # each mode's reference run, once, before the timed runs
            warm = tmp / f"warm-{mode}"
            make_class(warm, 1)
            grade(warm / "submitted", tmp / f"warm-out-{mode}", 1, args.profile, envs[mode])
        # job counts in the order given, both modes at each: a lease cut short still has
        # eager against graph at the first counts (device_run.sh gives 1 and 8 first)
        for jobs in (int(j) for j in args.jobs.split(",")):
            for mode in modes:
                out = tmp / f"out-{mode}-{jobs}"
                seconds, data = grade(subs / "submitted", out, jobs, args.profile, envs[mode])
                passed, fell, train_s = _training(data)
                per_hour = args.n / seconds * 3600
                rows.append({"mode": mode, "jobs": jobs, "n": args.n, "wall_s": seconds,
                             "per_hour": per_hour, "class_hours": CLASS / per_hour,
                             "training_passed": passed,
                             "fell_back": fell, "mean_part_s": train_s,
                             "isolation": data["isolation"]["method"]})
                print(f"{mode} x{jobs}: {seconds:.1f} s, {per_hour:,.0f}/h", flush=True)
                if args.json:  # after every row: a run cut short keeps what it measured
                    args.json.write_text(json.dumps({"machine": machine(), "rows": rows},
                                                    indent=1))
    # the baseline: eager with one job, measured in this run (else the first row)
    base = next((r for r in rows if r["mode"] == "eager" and r["jobs"] == 1), rows[0])
    for r in rows:
        r["ratio"] = r["per_hour"] / base["per_hour"]
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))
    print()
    print(f"| step | jobs on the GPU | submissions | wall s | per hour | "
          f"vs {base['mode']} x{base['jobs']} | "
          f"{CLASS:,} students | training passed | fell back to eager | isolation |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["mode"], r["jobs"])):
        print(f"| {r['mode']} | {r['jobs']} | {r['n']} | {r['wall_s']:.1f} | "
              f"{r['per_hour']:,.0f} | {r['ratio']:.2f}x | {r['class_hours']:.2f} h | "
              f"{r['training_passed']} | {r['fell_back']} | {r['isolation']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
