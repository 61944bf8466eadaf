"""The autograder's training check on this machine: reference block, a broken block, timings.

    python bench/bench_training_check.py --out DIR

Trains ResNet-18 from the reference ``Residual`` in a fresh process (as one submission would
be: interpreter start, CUDA set-up and training), then in-process from a broken block whose
main path is cut off from the gradient, and scores both with the grader's rule. Writes
``training_check.json`` and the broken block's feedback picture to DIR.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from autograder.checking.training import curve_png, score_training  # noqa: E402
from autograder.reference import reference_result  # noqa: E402
from autograder.sandbox.inside.training import QUICK_PROFILE, choose_profile, train_resnet  # noqa: E402
from cnncourse.config import default_device  # noqa: E402
from cnncourse.models import Residual  # noqa: E402


class DetachedResidual(Residual):
    """A typical bug: the main path is detached, so its convolutions never learn."""

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y)).detach()
        return F.relu(Y + (X if self.conv3 is None else self.conv3(X)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", choices=["cuda", "cpu"])
    p.add_argument("--profile", choices=["full", "quick"], default="full",
                   help="full: the device's profile (GPU or CPU); quick: the CI profile")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    profile = (QUICK_PROFILE if args.profile == "quick"
               else choose_profile(args.device or default_device()))
    print(profile.describe(), flush=True)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        ref = reference_result(profile, cache)  # a fresh process, like one submission
    ref_wall = time.perf_counter() - t
    print(f"reference: {ref['status']} val_acc {ref['val_acc']:.3f}, "
          f"training {ref['seconds']:.1f} s, wall incl. process start {ref_wall:.1f} s on "
          f"{ref['device_name']}", flush=True)
    rows = {"profile": profile.describe(), "reference": ref, "reference_wall_s": ref_wall}
    for name, block in (("solution", Residual), ("detached_main_path", DetachedResidual)):
        t = time.perf_counter()
        res = train_resnet(block, profile, time_limit=profile.time_limit(ref["seconds"]))
        wall = time.perf_counter() - t
        score, message = score_training(res, ref, profile, max_score=2.0)
        print(f"{name}: {res['status']} val_acc {res['val_acc']:.3f} in {wall:.1f} s -> "
              f"score {score:g}/2: {message}", flush=True)
        rows[name] = {"result": res, "wall_s": wall, "score": score, "feedback": message}
        (args.out / f"curve_{name}.png").write_bytes(curve_png(res, ref))
    (args.out / "training_check.json").write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
