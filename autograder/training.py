"""The training check: a ResNet-18 built from the student's ``Residual``, trained on
Fashion-MNIST under a fixed budget and seed, must reach a stated fraction of the reference
model's validation accuracy under the same budget on the same device.

``train_resnet`` runs inside the isolated worker and returns plain data only (numbers and
strings). Scoring and the picture of the curves happen in the grader, from those numbers.
The reference result is computed once per device and profile and cached as JSON.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Profile", "GPU_PROFILE", "CPU_PROFILE", "QUICK_PROFILE", "STATUSES", "SetupError",
           "choose_profile",
           "select_profile", "train_resnet",
           "reference_result", "score_training", "curve_png"]


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


class SetupError(RuntimeError):
    """The training check cannot run on this machine (no data, the reference failed)."""


def select_profile(run_profile: str, device: str) -> Profile:
    """The grader's choice: quick runs use QUICK_PROFILE, full runs the device's profile."""
    return QUICK_PROFILE if run_profile == "quick" else choose_profile(device)


def choose_profile(device: str | None = None) -> Profile:
    """The GPU profile when CUDA is available (or asked for), else the CPU one."""
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
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

    from cnncourse.data import FashionMNIST
    from cnncourse.models import ResNet18
    from cnncourse.trainer import Trainer

    result: dict = {"status": "error", "message": "", "val_acc": 0.0, "history": None,
                    "profile": asdict(profile), "seconds": 0.0}
    weights: dict = {}
    start = time.perf_counter()
    if profile.device == "cuda":
        if not torch.cuda.is_available():
            result["message"] = "the GPU profile was chosen but no CUDA device is visible"
            return result, weights
        total = torch.cuda.get_device_properties(0).total_memory
        if profile.gpu_memory_gib:
            torch.cuda.set_per_process_memory_fraction(
                min(1.0, profile.gpu_memory_gib * 2**30 / total))
    try:  # no download here: the worker has no network, and the grader checked the files
        data = FashionMNIST(batch_size=profile.batch_size,
                            resize=(profile.resize, profile.resize),
                            num_train=profile.num_train, num_val=profile.num_val,
                            download=False)
    except (OSError, ValueError) as exc:
        result.update(status="setup", message=f"{type(exc).__name__}: {_one_line(exc)}")
        return result, weights
    try:
        torch.manual_seed(profile.seed)
        model = ResNet18(residual=residual_cls)
        trainer = Trainer(max_epochs=profile.epochs, device=profile.device, seed=profile.seed,
                          compile=False, plot=False, progress=False,
                          time_budget=time_limit or profile.time_limit(None))
        history = trainer.fit(model, data)
    except torch.cuda.OutOfMemoryError as exc:
        result.update(status="oom", message=_one_line(exc))
        return result, weights
    except Exception as exc:  # the student's block failed while building or training
        result.update(status="error", message=f"{type(exc).__name__}: {_one_line(exc)}")
        return result, weights
    finally:
        result["seconds"] = time.perf_counter() - start
    result["device_name"] = history.device_name
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
    for name, value in model.state_dict().items():
        if value.is_floating_point():  # big tensors in float16: ResNet-18 is then 22 MB
            dtype = torch.float16 if value.numel() > 100_000 else torch.float32
            weights[name] = value.detach().to("cpu", dtype)
    return result, weights


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _cache_key(profile: Profile, device_name: str, torch_version: str) -> str:
    blob = json.dumps([asdict(profile), device_name, torch_version], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def reference_result(profile: Profile, cache_dir: str | os.PathLike,
                     timeout: float = 600.0) -> dict:
    """The reference Residual's result under ``profile`` on this machine, cached on disk.

    Computed once per (profile, device name, torch version) in a separate process, so the
    grader never holds the GPU memory that training takes.
    """
    import torch

    device_name = (torch.cuda.get_device_name(0) if profile.device == "cuda"
                   else f"cpu-{os.cpu_count()}")
    cache = Path(cache_dir) / f"reference-{profile.name}-{_cache_key(profile, device_name, torch.__version__)}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    cache.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "autograder.training", "--reference",
                           json.dumps(asdict(profile))],
                          capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parent.parent)
    if proc.returncode != 0:
        raise SetupError(f"reference training failed (exit {proc.returncode}): "
                         f"{proc.stderr.strip()[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["status"] != "ok":
        raise SetupError(f"reference training did not finish cleanly: {result['status']}: "
                         f"{result['message']}")
    result["device_name"] = device_name
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(cache)
    return result


def score_training(student: dict, reference: dict, profile: Profile,
                   max_score: float) -> tuple[float, str]:
    """Full marks when the student's accuracy reaches ``pass_fraction`` of the reference's."""
    ref_acc = float(reference["val_acc"])
    needed = profile.pass_fraction * ref_acc
    budget = (f"Same budget for both: {profile.describe()}.")
    status = student.get("status")
    acc = float(student.get("val_acc") or 0.0)
    message = str(student.get("message", ""))
    if status == "error" and message.startswith("NotImplementedError") and "forward" in message:
        return 0.0, ("ResNet-18 could not run your block: it has no forward method (is "
                     "`def forward` indented inside `__init__`?). Define forward at the "
                     "class level, next to __init__.")
    if status == "error" and message.startswith("NotImplementedError"):
        return 0.0, ("Residual is not implemented yet, so there is nothing to train: write "
                     "the block in its answer cell first.")
    if status == "error":
        return 0.0, (f"Expected ResNet-18 built from your Residual to train; it failed with "
                     f"{student.get('message')}. Next step: build ResNet18 from your block in "
                     f"the notebook and run one batch of shape (2, 1, 96, 96) through it.")
    if status == "oom":
        return 0.0, (f"Training ran out of GPU memory (the cap is {profile.gpu_memory_gib:g} GiB "
                     f"per submission). The reference needs far less: look for tensors kept "
                     f"alive across calls or blocks that grow the channel count. {budget}")
    if status == "nan":
        return 0.0, (f"The training loss became NaN or infinite ({student.get('message')}). "
                     f"Next step: check that each convolution is followed by its batch "
                     f"normalization and that the shortcut is added before the final ReLU.")
    if acc >= needed:
        return float(max_score), (f"Passed: validation accuracy {acc:.3f}; the reference block "
                                  f"reached {ref_acc:.3f} and passing needs {needed:.3f} "
                                  f"({profile.pass_fraction:.0%} of it). {budget}")
    why = ""
    if status == "budget":
        why = (f" Training was stopped by the time budget ({student.get('message')}); your "
               f"block may be much slower than the reference.")
    return 0.0, (f"Expected validation accuracy of at least {needed:.3f} "
                 f"({profile.pass_fraction:.0%} of the reference block's {ref_acc:.3f}); "
                 f"got {acc:.3f}.{why} Next step: compare your forward pass with the "
                 f"chapter's: conv-BN-ReLU, conv-BN, add the shortcut (1x1 conv when the "
                 f"shape changes), then ReLU. {budget}")


def curve_png(student: dict, reference: dict | None = None) -> bytes:
    """PNG of the student's (and the reference's) validation accuracy and training loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(7.5, 2.8))
    for result, label, style in ((student, "your block", "-o"), (reference, "reference", "--s")):
        hist = (result or {}).get("history") or {}
        losses, accs = hist.get("train_loss") or [], hist.get("val_acc") or []
        xs = range(1, len(losses) + 1)
        if losses:  # None or infinity: a diverged epoch, left as a gap
            ax_loss.plot(xs, [v if v is not None and math.isfinite(v) else float("nan")
                              for v in losses], style, ms=3, label=label)
        if accs:
            ax_acc.plot(range(1, len(accs) + 1), accs, style, ms=3, label=label)
    ax_loss.set(title="training loss", xlabel="epoch")
    ax_acc.set(title="validation accuracy", xlabel="epoch", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _main(argv: list[str]) -> int:
    # python -m autograder.training --reference '<profile json>': trains the reference block
    if len(argv) != 2 or argv[0] != "--reference":
        print("usage: python -m autograder.training --reference PROFILE_JSON", file=sys.stderr)
        return 2
    from cnncourse.models import Residual

    profile = Profile(**json.loads(argv[1]))
    # the reference is never cut short: its time sets the students' limit
    print(json.dumps(train_resnet(Residual, profile, time_limit=1e9)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
