"""The training run of the training check: ResNet-18 built from the student's ``Residual``,
trained on Fashion-MNIST under a fixed profile (budget, seed, size).

Runs in two places with the same code: inside the sandbox on the student's block (the
``plain_data`` driver calls ``train_resnet``), and in a separate process of the grader's
on the reference block (``autograder/reference.py``). It returns plain data only (numbers,
strings and, for the grader's own check, the trained weights as tensors); scoring and the
picture of the curves happen in the grader (``checking/training.py``). Imports only the
standard library, torch and the course's own ``cnncourse``.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass

__all__ = ["Profile", "GPU_PROFILE", "CPU_PROFILE", "QUICK_PROFILE", "STATUSES",
           "choose_profile", "select_profile", "train_resnet"]


@dataclass(frozen=True)
class Profile:
    """How a training check is run; recorded in results.json and shown in the feedback."""

    name: str                    # "gpu" or "cpu"
    device: str                  # torch device type
    resize: int                  # image side fed to ResNet-18
    num_train: int
    num_val: int
    epochs: int
    batch_size: int
    seed: int
    time_budget: float           # least seconds of training allowed (see ``time_limit``)
    pass_fraction: float         # student accuracy / reference accuracy needed to pass
    gpu_memory_gib: float = 0.0  # per-submission cap on the GPU (0: none / CPU)
    max_seconds: float = 0.0     # most seconds of training, whatever the reference (0: none)

    def describe(self) -> str:
        return (f"{self.name.upper()} profile: ResNet-18 at {self.resize}x{self.resize}, "
                f"{self.num_train:,} training and {self.num_val:,} validation images, "
                f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}, "
                f"batch {self.batch_size}, seed {self.seed}")

    def time_limit(self, reference_seconds: float | None) -> float:
        """Seconds a submission may train: three times the reference's, and at least
        ``time_budget``, so a slow machine slows both alike and only a much slower block
        is stopped early. ``max_seconds`` caps that (a class must finish in its hour), but
        never below 1.5 times the reference, so the reference block always finishes."""
        ref = reference_seconds or 0.0
        limit = max(self.time_budget, 3.0 * ref)
        if self.max_seconds:
            limit = min(limit, max(self.max_seconds, 1.5 * ref))
        return limit


# GPU: the chapter's resolution and all of the data; on an H200 the reference trains in
# 8 s and a whole submission takes 12 s with start-up (BENCHMARKS.md).
GPU_PROFILE = Profile("gpu", "cuda", 96, 60000, 10000, 2, 256, 0, 20.0, 0.95, 8.0)
# CPU: a small subset at the native 28x28. On 2 cores the reference trains in about 30 s;
# a block is stopped after 50 s of training, so a submission stays under 60 s with start-up
# and the grader's own check (BENCHMARKS.md). Fewer examples make runs noisier, hence the
# lower bar.
CPU_PROFILE = Profile("cpu", "cpu", 28, 2048, 1024, 2, 128, 0, 30.0, 0.9, max_seconds=50.0)


# QUICK: CI and the test suite (CNN_QUICK=1 / --profile quick): seconds, on any machine.
# 1,024 images for 2 epochs: the reference reaches about 0.6, a block whose main path
# gets no gradient about 0.3 (measured on 2 cores).
QUICK_PROFILE = Profile("quick", "cpu", 28, 1024, 256, 2, 64, 0, 15.0, 0.8)
STATUSES = ("ok", "nan", "budget", "oom", "error", "setup")


def select_profile(run_profile: str, device: str) -> Profile:
    """The grader's choice: quick runs use QUICK_PROFILE, full runs the device's profile."""
    return QUICK_PROFILE if run_profile == "quick" else choose_profile(device)


def choose_profile(device: str) -> Profile:
    """The GPU profile for "cuda", else the CPU one (the run's device: see
    ``cnncourse.config.default_device``, the one rule for it)."""
    return GPU_PROFILE if device == "cuda" else CPU_PROFILE


def train_resnet(residual_cls, profile: Profile, time_limit: float | None = None,
                 ship_weights: bool = False):
    """Train ResNet-18 made of ``residual_cls`` blocks; returns a JSON-able result dict.

    ``time_limit``: seconds of training before the trainer stops (default: the profile's
    ``time_limit`` without a reference, i.e. ``time_budget``). ``ship_weights``: return
    ``(result, weights)`` instead, the trained floating-point state as tensors, so that the
    grader can check the reported accuracy without running the student's code.

    ``status`` is "ok", "nan" (non-finite loss), "budget" (stopped by the time budget),
    "oom" (out of device memory), "error" (the model could not be built or run) or "setup"
    (the data could not be read where the run happens: the grader's fault, not the block's).
    """
    if isinstance(profile, dict):  # as the grader's worker hands it over (JSON)
        profile = Profile(**profile)
    result, weights = _train(residual_cls, profile, time_limit)
    return (result, weights) if ship_weights else result


def _train(residual_cls, profile: Profile, time_limit: float | None) -> tuple[dict, dict]:
    import torch

    from cnncourse.models import ResNet18
    from cnncourse.trainer import Trainer

    result: dict = {"status": "error", "message": "", "val_acc": 0.0, "history": None,
                    "profile": asdict(profile), "seconds": 0.0}
    start = time.perf_counter()
    data = _data(profile, result)
    if data is None:
        return result, {}
    try:
        torch.manual_seed(profile.seed)
        model = ResNet18(residual=residual_cls)
        trainer = Trainer(max_epochs=profile.epochs, device=profile.device, seed=profile.seed,
                          compile=False, plot=False, progress=False,
                          time_budget=time_limit or profile.time_limit(None))
        history = trainer.fit(model, data)
    except torch.cuda.OutOfMemoryError as exc:
        result.update(status="oom", message=_one_line(exc))
        return result, {}
    except Exception as exc:  # noqa: BLE001 - the student's block failed to build or train
        result.update(status="error", message=f"{type(exc).__name__}: {_one_line(exc)}")
        return result, {}
    finally:
        result["seconds"] = time.perf_counter() - start
    _record(result, history)
    return result, _weights(model)


def _data(profile: Profile, result: dict):
    """The profile's data module on its device (the GPU capped first), or None with the
    reason in ``result``."""
    import torch

    from cnncourse.data import FashionMNIST

    if profile.device == "cuda":
        if not torch.cuda.is_available():
            result["message"] = "the GPU profile was chosen but no CUDA device is visible"
            return None
        total = torch.cuda.get_device_properties(0).total_memory
        # the profile's cap, or less: the share of a GPU that this job was packed into
        caps = [profile.gpu_memory_gib * 2**30] if profile.gpu_memory_gib else []
        if os.environ.get("CNN_GPU_MEMORY_BYTES", "").isdigit():
            caps.append(int(os.environ["CNN_GPU_MEMORY_BYTES"]))
        if caps:
            torch.cuda.set_per_process_memory_fraction(min(1.0, min(caps) / total))
    try:  # no download here: the worker has no network, and the grader checked the files
        return FashionMNIST(batch_size=profile.batch_size,
                            resize=(profile.resize, profile.resize),
                            num_train=profile.num_train, num_val=profile.num_val,
                            download=False)
    except (OSError, ValueError) as exc:
        result.update(status="setup", message=f"{type(exc).__name__}: {_one_line(exc)}")
        return None


def _record(result: dict, history) -> None:
    """The history as JSON data, the final accuracy and the status, into ``result``."""
    result["device_name"] = history.device_name
    result["step_mode"] = history.step_mode  # "cuda graph", or eager and why
    # JSON has no NaN or infinity: a diverged epoch's loss travels as None
    result["history"] = {k: ([x if math.isfinite(x) else None for x in v]
                             if isinstance(v, list) else v)
                         for k, v in history.to_dict().items()}
    result["history"]["val_acc"] = [x if x is not None else 0.0
                                    for x in result["history"]["val_acc"]]
    result["val_acc"] = float(history.val_acc[-1]) if history.val_acc else 0.0
    if history.stopped and "non-finite" in history.stopped:
        result.update(status="nan", message=history.stopped)
    elif history.stopped:
        result.update(status="budget", message=history.stopped)
    else:
        result["status"] = "ok"
    if not math.isfinite(result["val_acc"]):
        result.update(status="nan", val_acc=0.0)


def _weights(model) -> dict:
    """The trained floating-point state, big tensors in float16 (ResNet-18 is then 22 MB)."""
    import torch

    return {name: value.detach().to("cpu", torch.float16 if value.numel() > 100_000
                                    else torch.float32)
            for name, value in model.state_dict().items() if value.is_floating_point()}


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."
