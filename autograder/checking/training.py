"""Scoring a training run, in the grader, from the plain numbers the worker sent back (and
that the grader re-measured from the weights: ``verification.py``), and the picture of its
curves for the feedback page."""
from __future__ import annotations

import io
import math

from ..sandbox.inside.training import Profile

__all__ = ["score_training", "curve_png"]


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
