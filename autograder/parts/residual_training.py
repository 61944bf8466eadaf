"""Part ``residual_training``: does a ResNet-18 built from the student's block really train?

The worker builds the chapter's ResNet-18 from the student's ``Residual`` and trains it on
Fashion-MNIST under the run's profile (``sandbox/inside/training.py``); only numbers and
the trained weights come back.
The grader validates them, compares the final validation accuracy with the reference
block's under the same profile on the same machine (computed once per run, or read from
the cache), and draws the curves for the feedback page.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cnncourse.config import GRAPH_ENV

from ..checking import training as scoring
from ..checking import verification
from ..checking.report import Report, error_info
from ..errors import SetupError
from ..i18n import N_, _
from ..jobs import Limits, RunSettings
from ..output.results import CheckResult, Figure, PartResult
from ..reference import reference_result
from ..sandbox.inside import training, wire
from .base import Part, Prepared, passed_message
from .residual import FORWARD_EVAL, FORWARD_TRAIN, GRADIENTS

__all__ = ["ResidualTraining", "TrainingRun"]

_CACHE_ENV = "CNN_AUTOGRADER_CACHE"  # a folder to share reference runs between output folders
_STARTUP_S = 60.0   # on top of the training time: start-up, data loading and evaluation
_CPU_MEMORY = 6 << 30  # RLIMIT_AS on the CPU; CUDA cannot start under one (0: none)


@dataclass(frozen=True)
class TrainingRun:
    """What scoring needs of one run's set-up: the profile, the reference run, the data."""

    profile: training.Profile
    reference: dict
    raw: Path                  # the folder of the raw Fashion-MNIST files
    time_limit: float          # seconds of training a submission may use
    gpu_sharing: int = 1       # training jobs packed on one GPU; the limit allows for them


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
    clean["step_mode"] = str(data.get("step_mode", ""))[:300]
    return clean


class ResidualTraining(Part):
    """Trains ResNet-18 made of the student's blocks; passes at a fraction of the reference."""

    name = grade_id = "residual_training"
    answer_ids = ("residual_answer",)
    object_name = "Residual"
    driver = "plain_data"
    limits = Limits(threads=2, file_bytes=40 << 20, result_bytes=40 << 20,
                    memory_bytes=_CPU_MEMORY)  # the weights: 22 MB in float16
    memoize = True  # seeded training of identical code gives identical numbers
    own_timeout = True  # its limit follows from the reference run, not from --timeout
    strict_imports = False  # the training code imports cnncourse: refuse only the student's
    # The grader measures the accuracy of the shipped weights with the reference block's
    # forward pass; that number stands for the student's block only when the two compute
    # the same thing and every weight learns. Otherwise a student could train a correct
    # copy of the block in their own process and ship its weights.
    requires = (("residual", (FORWARD_TRAIN, FORWARD_EVAL, GRADIENTS)),)
    requires_why = N_("The grader measures your trained network with the reference block's "
                      "forward pass, which stands for your block only when your block "
                      "computes the same outputs and passes gradients to every weight.")

    # --- run set-up (in the grader, once per run) -------------------------------------
    def fetch(self) -> Path:
        """Link (or download) Fashion-MNIST into the data root while we may still write,
        before the workers start: their sandbox binds the data root and the folders its
        links point to only if these exist then. Returns the raw files' folder."""
        from cnncourse.config import data_root
        from cnncourse.data import find_raw_folder

        try:
            return find_raw_folder()
        except Exception as exc:  # noqa: BLE001 - no files and no download
            raise SetupError(
                f"residual_training needs Fashion-MNIST and cannot find or download it "
                f"({type(exc).__name__}: {exc}). Put the four .gz files in "
                f"$CNN_DATA/FashionMNIST/raw (now {data_root()}) and run again.") from None

    def uses_gpu(self, settings: RunSettings) -> bool:
        return training.select_profile(settings.profile, settings.device).device == "cuda"

    def gpu_memory_bytes(self, settings: RunSettings) -> int:
        return int(training.select_profile(settings.profile, settings.device).gpu_memory_gib
                   * 2**30)

    def prepare(self, points: float, settings: RunSettings) -> Prepared:
        """Train the reference block (or read its cached result) under the run's profile."""
        profile = training.select_profile(settings.profile, settings.device)
        raw = self.fetch()
        cache = Path(os.environ.get(_CACHE_ENV) or settings.cache_dir
                     or Path(tempfile.gettempdir()) / "autograder-reference")
        reference = reference_result(profile, cache, cuda_graph=settings.cuda_graph)
        # The reference trains alone; a job packed with others on one GPU is slowed by
        # them, so its limit grows with their number (and the feedback says so).
        sharing = max(1, settings.gpu_sharing) if profile.device == "cuda" else 1
        run = TrainingRun(profile, reference, raw,
                          profile.time_limit(reference.get("seconds")) * sharing, sharing)
        limits = Limits(**{**asdict(self.limits), "timeout_s": run.time_limit + _STARTUP_S,
                           "memory_bytes": 0 if profile.device == "cuda" else _CPU_MEMORY})
        facts = {"training": {"profile": profile.name, "description": profile.describe(),
                              "device": reference.get("device_name"),
                              "reference_val_acc": round(float(reference["val_acc"]), 4),
                              "reference_seconds": round(float(reference["seconds"]), 2),
                              "time_limit_s": round(run.time_limit, 1),
                              "pass_fraction": profile.pass_fraction,
                              "gpu_sharing": sharing,
                              "reference_step_mode": reference.get("step_mode", "")}}
        fields = {"module": "training", "function": "train_resnet",
                  "kwargs": {"time_limit": run.time_limit, "ship_weights": True}}
        env = {"CNN_DATA": str(raw.parent.parent)}
        if profile.device == "cuda":  # the sandbox captures (or not) as the reference did
            env[GRAPH_ENV] = "1" if settings.cuda_graph else "0"
        return Prepared(self, points, limits, fields, (), asdict(profile), env,
                        profile.device == "cuda", facts, run)

    # --- scoring ----------------------------------------------------------------------
    def _verify(self, header: dict, blobs: list[bytes], result: dict,
                profile: training.Profile) -> str | None:
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
                return _("the trained weights that came back were unreadable "
                         "({error}).").format(error=exc)
        check = verification.verify_weights(arrays, profile)
        if check.accuracy is None:
            return _("Your training run could not be checked: {problem}. The grader measures "
                     "the accuracy itself from the trained weights.").format(
                problem=check.problem)
        if abs(check.accuracy - result["val_acc"]) > verification.TOLERANCE:
            return _("The validation accuracy your run reported ({reported}) could not be "
                     "reproduced from its trained weights with the reference block's forward "
                     "pass ({measured}). Either your forward pass differs from the reference "
                     "(see the residual part's checks) or the numbers were not produced by "
                     "training.").format(reported=f"{result['val_acc']:.3f}",
                                         measured=f"{check.accuracy:.3f}")
        result["val_acc"] = check.accuracy  # the grader's own measurement counts
        return None

    def _result(self, report: Report, prepared: Prepared) -> tuple[dict, dict, list] | str:
        """The validated training result with its frame, or why there is none to score."""
        run: TrainingRun = prepared.state
        frames = report.frames.get("data") or []
        if not frames:
            why = report.stop_reason() or _("no training result came back")
            if report.outcome.timed_out:
                why += " " + _("Training ResNet-18 from your block took longer than {limit} "
                               "s; the reference needs {seconds} s.").format(
                    limit=f"{prepared.limits.timeout_s:.0f}",
                    seconds=f"{run.reference['seconds']:.0f}")
            return why
        header, blobs = frames[0]
        if header.get("ok") is not True:
            return _("training could not run: {error}").format(
                error=error_info(header.get("error")).describe(300))
        result = _validate(header.get("data"), run.profile)
        if result is None:
            return _("the training run sent back malformed numbers, so it cannot be scored.")
        if result["status"] == "setup":  # the grader's machine, not the student's block
            raise SetupError(
                f"the sandboxed worker could not read Fashion-MNIST ({result['message']}); "
                f"the files under {run.raw} must be readable there (links resolved)")
        return result, header, blobs

    def score(self, report: Report, prepared: Prepared) -> PartResult:
        points, run = prepared.points, prepared.state
        stop = self.preamble(report)
        if stop:
            return PartResult.zero(self.name, points, stop)
        got = self._result(report, prepared)
        if isinstance(got, str):
            return PartResult.zero(self.name, points, got)
        result, header, blobs = got
        checked = self._verify(header, blobs, result, run.profile)
        if checked is not None:  # the reported numbers do not hold up
            return PartResult.zero(self.name, points, checked)
        score, message = scoring.score_training(result, run.reference, run.profile, points,
                                                run.time_limit)
        trained = result["status"] in ("ok", "budget") and bool(result.get("history"))
        checks = [CheckResult(_("ResNet-18 from your block trains"), trained, 1.0,
                              passed_message() if trained else message),
                  CheckResult(_("accuracy close to the reference block's"), score > 0, 3.0,
                              message)]
        total = PartResult.from_checks(self.name, points, checks, message)
        alt = _("Training loss and validation accuracy per epoch for ResNet-18 built from "
                "your block (final validation accuracy {accuracy}) and from the reference "
                "block ({reference}).").format(accuracy=f"{result['val_acc']:.3f}",
                                               reference=f"{run.reference['val_acc']:.3f}")
        png = scoring.curve_png(result, run.reference)
        if not scoring.curve_has_words():
            alt += " " + scoring.curve_legend()
        feedback = total.feedback
        note = scoring.step_note(result, run.reference)
        if note:
            feedback += " " + note
        if run.gpu_sharing > 1:
            feedback += " " + _("{jobs} training jobs shared the GPU while yours ran, so its "
                                "time limit ({limit} s) is {jobs} times the limit of a run "
                                "alone; the reference block was timed alone.").format(
                jobs=run.gpu_sharing, limit=f"{run.time_limit:.0f}")
        return PartResult(total.name, total.score, total.max_score, feedback,
                          total.checks, figures=(Figure(png, alt),))
