"""Part ``residual_training``: does a ResNet-18 built from the student's block really train?

The worker builds the chapter's ResNet-18 from the student's ``Residual`` and trains it on
Fashion-MNIST under the run's profile (``autograder.training``); only numbers come back.
The grader validates them, compares the final validation accuracy with the reference
block's under the same profile on the same machine (computed once per run, or read from
the cache), and draws the curves for the feedback page.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import training, verification, wire
from ..report import Report, error_info
from ..results import CheckResult, Figure, PartResult
from .base import Part
from .residual import FORWARD_EVAL, FORWARD_TRAIN, GRADIENTS

__all__ = ["ResidualTraining", "gpu_present"]

_CACHE_ENV = "CNN_AUTOGRADER_CACHE"  # a folder to share reference runs between output folders


def gpu_present() -> bool:
    """Cheap test for a usable NVIDIA GPU, without importing torch in the grader."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return Path("/dev/nvidiactl").exists() and visible not in ("", "-1")


def _floats(value: Any, limit: int = 1000) -> list[float] | None:
    """A list of numbers (None stands for a non-finite value), or None when malformed."""
    if not isinstance(value, list) or len(value) > limit:
        return None
    if not all(v is None or type(v) in (int, float) for v in value):
        return None
    return [float("nan") if v is None else float(v) for v in value]


def _validate(data: Any, profile: training.Profile) -> dict | None:
    """The worker's answer, reduced to the fields we use, or None when malformed."""
    if not isinstance(data, dict) or data.get("status") not in training.STATUSES:
        return None
    hist = data.get("history")
    clean: dict = {"status": data["status"], "message": str(data.get("message", ""))[:300]}
    if hist is not None:
        if not isinstance(hist, dict):
            return None
        fields = {k: _floats(hist.get(k, [])) for k in
                  ("train_loss", "train_acc", "val_acc", "epoch_seconds")}
        if any(v is None for v in fields.values()):
            return None
        if len(fields["val_acc"]) > profile.epochs or not all(
                0.0 <= a <= 1.0 for a in fields["val_acc"]):
            return None
        clean["history"] = fields
    acc = data.get("val_acc")
    if type(acc) not in (int, float) or not (0.0 <= acc <= 1.0):
        return None
    if hist is not None and clean["history"]["val_acc"] and \
            not math.isclose(acc, clean["history"]["val_acc"][-1], abs_tol=1e-9):
        return None  # the headline number must be the last epoch's
    clean["val_acc"] = float(acc)
    return clean


class ResidualTraining(Part):
    """Trains ResNet-18 made of the student's blocks; passes at a fraction of the reference."""

    name = grade_id = "residual_training"
    answer_ids = ("residual_answer",)
    object_name = "Residual"
    driver = "plain_data"
    threads = 2
    memoize = True  # seeded training of identical code gives identical numbers
    file_bytes = 40 << 20  # the report carries the trained weights: 22 MB in float16
    own_timeout = True  # its limit follows from the reference run, not from --timeout
    worker_files = (Path(training.__file__).resolve(),)
    # The grader measures the accuracy of the shipped weights with the reference block's
    # forward pass; that number stands for the student's block only when the two compute
    # the same thing and every weight learns. Otherwise a student could train a correct
    # copy of the block in their own process and ship its weights.
    requires = (("residual", (FORWARD_TRAIN, FORWARD_EVAL, GRADIENTS)),)
    requires_why = ("The grader measures your trained network with the reference block's "
                    "forward pass, which stands for your block only when your block computes "
                    "the same outputs and passes gradients to every weight.")

    def __init__(self) -> None:
        self._references: dict[str, dict] = {}
        self._profile: training.Profile | None = None
        self._raw: Path | None = None  # the raw files' folder, set by fetch()

    # --- run set-up (in the grader, once per run) -------------------------------------
    @property
    def uses_gpu(self) -> bool:  # read when the worker pool starts
        return gpu_present()

    def profile_for(self, run_profile: str) -> training.Profile:
        return training.select_profile(run_profile, "cuda" if gpu_present() else "cpu")

    def fetch(self) -> None:
        """Link (or download) Fashion-MNIST into the data root while we may still write,
        before the workers start: their sandbox binds the data root and the folders its
        links point to only if these exist then."""
        from cnncourse.config import data_root
        from cnncourse.data import find_raw_folder

        try:
            self._raw = find_raw_folder()
        except Exception as exc:  # noqa: BLE001 - no files and no download
            raise training.SetupError(
                f"residual_training needs Fashion-MNIST and cannot find or download it "
                f"({type(exc).__name__}: {exc}). Put the four .gz files in "
                f"$CNN_DATA/FashionMNIST/raw (now {data_root()}) and run again.") from None

    def prepare(self, out_dir: Path, run_profile: str) -> None:
        """Train the reference block (or read its cached result). ``grade`` has fetched the
        data by now; a caller that did not gets it fetched here."""
        self._profile = profile = self.profile_for(run_profile)
        if self._raw is None:
            self.fetch()
        cache = Path(os.environ.get(_CACHE_ENV) or Path(out_dir) / ".reference")
        if profile.name not in self._references:
            self._references[profile.name] = training.reference_result(profile, cache)

    def run_facts(self) -> dict[str, Any]:
        ref = self.reference
        return {"training": {"profile": self.profile.name, "description": self.profile.describe(),
                             "device": ref.get("device_name"),
                             "reference_val_acc": round(float(ref["val_acc"]), 4),
                             "reference_seconds": round(float(ref["seconds"]), 2),
                             "time_limit_s": round(self.time_limit, 1),
                             "pass_fraction": self.profile.pass_fraction}}

    @property
    def reference(self) -> dict:
        return self._references[self.profile.name]

    @property
    def profile(self) -> training.Profile:
        if self._profile is None:
            raise RuntimeError("residual_training.prepare() must run before grading")
        return self._profile

    @property
    def time_limit(self) -> float:
        return self.profile.time_limit(self.reference.get("seconds"))

    @property
    def timeout_s(self) -> float:  # start-up, data loading and evaluation on top of training
        return self.time_limit + 60.0

    @property
    def memory_bytes(self) -> int:
        # CUDA cannot start under RLIMIT_AS; the GPU cap is set inside train_resnet instead
        return 0 if self.profile.device == "cuda" else 6 << 30

    def job_fields(self) -> tuple[dict[str, Any], list[bytes]]:
        return {"module": "training", "function": "train_resnet",
                "kwargs": {"time_limit": self.time_limit, "ship_weights": True}}, []

    def worker_env(self, profile: str) -> dict[str, str]:
        return {"CNN_DATA": str(self._raw.parent.parent)}

    def worker_profile(self, profile: str) -> dict:
        return asdict(self.profile)

    # --- scoring ----------------------------------------------------------------------
    def _verify(self, header: dict, blobs: list[bytes], result: dict) -> str | None:
        """None when the grader's own accuracy for the shipped weights matches the report
        (and then replaces it), else what the student should read."""
        if result["status"] not in ("ok", "budget") or not result.get("history"):
            return None  # nothing trained: the report already scores zero
        descs = header.get("arrays")
        arrays = {}
        if isinstance(descs, dict) and len(descs) <= 1000:
            try:
                arrays = {str(k)[:200]: wire.decode_array(v, blobs) for k, v in descs.items()}
            except wire.WireError as exc:
                return f"the trained weights that came back were unreadable ({exc})."
        check = verification.verify_weights(arrays, self.profile)
        if check.accuracy is None:
            return (f"Your training run could not be checked: {check.problem}. The grader "
                    f"measures the accuracy itself from the trained weights.")
        if abs(check.accuracy - result["val_acc"]) > verification.TOLERANCE:
            return (f"The validation accuracy your run reported ({result['val_acc']:.3f}) "
                    f"could not be reproduced from its trained weights with the reference "
                    f"block's forward pass ({check.accuracy:.3f}). Either your forward pass "
                    f"differs from the reference (see the residual part's checks) or the "
                    f"numbers were not produced by training.")
        result["val_acc"] = check.accuracy  # the grader's own measurement counts
        return None

    def score(self, report: Report, points: float) -> PartResult:
        stop = self.preamble(report)
        if stop:
            return PartResult.zero(self.name, points, stop)
        frames = report.frames.get("data") or []
        header = frames[0][0] if frames else {}
        if not frames:
            why = report.stop_reason() or "no training result came back"
            if report.outcome.timed_out:
                why += (f" Training ResNet-18 from your block took longer than "
                        f"{self.timeout_s:.0f} s; the reference needs {self.reference['seconds']:.0f} s.")
            return PartResult.zero(self.name, points, why)
        if header.get("ok") is not True:
            err = error_info(header.get("error"))
            return PartResult.zero(self.name, points, f"training could not run: {err.describe(300)}")
        result = _validate(header.get("data"), self.profile)
        if result is None:
            return PartResult.zero(self.name, points, "the training run sent back malformed "
                                   "numbers, so it cannot be scored.")
        if result["status"] == "setup":  # the grader's machine, not the student's block
            raise training.SetupError(
                f"the sandboxed worker could not read Fashion-MNIST ({result['message']}); "
                f"the files under {self._raw} must be readable there (links resolved)")
        checked = self._verify(header, frames[0][1], result)
        if checked is not None:  # the reported numbers do not hold up
            return PartResult.zero(self.name, points, checked)
        score, message = training.score_training(result, self.reference, self.profile, points)
        trained = result["status"] in ("ok", "budget") and bool(result.get("history"))
        checks = [CheckResult("ResNet-18 from your block trains", trained, 1.0,
                              "passed" if trained else message),
                  CheckResult("accuracy close to the reference block's", score > 0, 3.0,
                              message)]
        total = PartResult.from_checks(self.name, points, checks, message)
        alt = (f"Training loss and validation accuracy per epoch for ResNet-18 built from "
               f"your block (final validation accuracy {result['val_acc']:.3f}) and from the "
               f"reference block ({self.reference['val_acc']:.3f}).")
        png = training.curve_png(result, self.reference)
        return PartResult(total.name, total.score, total.max_score, total.feedback,
                          total.checks, figures=(Figure(png, alt),))
