"""Scoring a training run, in the grader, from the plain numbers the worker sent back (and
that the grader re-measured from the weights: ``verification.py``), and the picture of its
curves for the feedback page."""
from __future__ import annotations

import io
import math

from ..i18n import DEFAULT, _, current, ngettext
from ..sandbox.inside.training import Profile

__all__ = ["score_training", "curve_png", "curve_has_words", "curve_legend", "describe_profile",
           "step_note"]


def describe_profile(profile: Profile) -> str:
    """``Profile.describe()`` in the current language (that one runs inside the sandbox
    too, so it cannot use the catalog)."""
    return ngettext("{name} profile: ResNet-18 at {size}x{size}, {train} training and {val} "
                    "validation images, {epochs} epoch, batch {batch}, seed {seed}",
                    "{name} profile: ResNet-18 at {size}x{size}, {train} training and {val} "
                    "validation images, {epochs} epochs, batch {batch}, seed {seed}",
                    profile.epochs).format(
        name=profile.name.upper(), size=profile.resize, train=f"{profile.num_train:,}",
        val=f"{profile.num_val:,}", epochs=profile.epochs, batch=profile.batch_size,
        seed=profile.seed)


_FELL_BACK = "eager (capture failed: "


def step_note(student: dict, reference: dict) -> str:
    """What the student should know when their block could not be captured as a CUDA
    graph while the reference's was (then their run took more time per step), else ""."""
    mode = str(student.get("step_mode") or "")
    if not mode.startswith(_FELL_BACK) or reference.get("step_mode") != "cuda graph":
        return ""
    return _("Your block could not be captured as a CUDA graph ({reason}), so it trained "
             "one kernel at a time (eager), which is slower; the reference block was "
             "captured. This costs no points by itself, but a block that reads tensor values "
             "back into Python (.item(), print, an if on a tensor) has less of its time "
             "limit to spend on training.").format(reason=mode[len(_FELL_BACK):-1])


def _stopped(student: dict, time_limit: float | None) -> str:
    """Why the trainer stopped, composed here from the status and the numbers (the
    trainer's own sentence comes from the student's process, in English)."""
    hist = student.get("history") or {}
    if student.get("status") == "nan" and hist.get("train_loss"):
        return _("non-finite training loss in epoch {epoch}").format(
            epoch=len(hist["train_loss"]))
    if student.get("status") == "budget" and time_limit:
        return _("time budget of {seconds} s reached").format(seconds=f"{time_limit:g}")
    return str(student.get("message", ""))


def _failed(student: dict, profile: Profile, budget: str) -> str | None:
    """The message of a run that did not train to the end, or None."""
    status, message = student.get("status"), str(student.get("message", ""))
    if status == "error" and message.startswith("NotImplementedError") and "forward" in message:
        return _("ResNet-18 could not run your block: it has no forward method (is `def "
                 "forward` indented inside `__init__`?). Define forward at the class level, "
                 "next to __init__.")
    if status == "error" and message.startswith("NotImplementedError"):
        return _("Residual is not implemented yet, so there is nothing to train: write the "
                 "block in its answer cell first.")
    if status == "error":
        return _("Expected ResNet-18 built from your Residual to train; it failed with "
                 "{error}. Next step: build ResNet18 from your block in the notebook and run "
                 "one batch of shape (2, 1, 96, 96) through it.").format(error=message)
    if status == "oom":
        return _("Training ran out of GPU memory (the cap is {cap} GiB per submission). The "
                 "reference needs far less: look for tensors kept alive across calls or "
                 "blocks that grow the channel count. {budget}").format(
            cap=f"{profile.gpu_memory_gib:g}", budget=budget)
    return None


def score_training(student: dict, reference: dict, profile: Profile, max_score: float,
                   time_limit: float | None = None) -> tuple[float, str]:
    """Full marks when the student's accuracy reaches ``pass_fraction`` of the reference's.
    ``time_limit``: the seconds of training the run was allowed (for the message)."""
    ref_acc = float(reference["val_acc"])
    needed = profile.pass_fraction * ref_acc
    budget = _("Same budget for both: {profile}.").format(profile=describe_profile(profile))
    status = student.get("status")
    acc = float(student.get("val_acc") or 0.0)
    failed = _failed(student, profile, budget)
    if failed:
        return 0.0, failed
    numbers = {"acc": f"{acc:.3f}", "reference": f"{ref_acc:.3f}", "needed": f"{needed:.3f}",
               "fraction": f"{profile.pass_fraction:.0%}", "budget": budget}
    if status == "nan":
        return 0.0, _("The training loss became NaN or infinite ({why}). Next step: check "
                      "that each convolution is followed by its batch normalization and that "
                      "the shortcut is added before the final ReLU.").format(
            why=_stopped(student, time_limit))
    if acc >= needed:
        return float(max_score), _("Passed: validation accuracy {acc}; the reference block "
                                   "reached {reference} and passing needs {needed} "
                                   "({fraction} of it). {budget}").format(**numbers)
    why = ""
    if status == "budget":
        why = " " + _("Training was stopped by the time budget ({why}); your block may be "
                      "much slower than the reference.").format(
            why=_stopped(student, time_limit))
    return 0.0, _("Expected validation accuracy of at least {needed} ({fraction} of the "
                  "reference block's {reference}); got {acc}.{why} Next step: compare your "
                  "forward pass with the chapter's: conv-BN-ReLU, conv-BN, add the shortcut "
                  "(1x1 conv when the shape changes), then ReLU. {budget}").format(
        why=why, **numbers)


_CJK_FONTS = ("Noto Sans CJK KR", "Noto Sans KR", "NanumGothic", "Malgun Gothic",
              "AppleGothic", "UnDotum", "Baekmuk Gulim")


def hangul_font() -> str | None:
    """A font family matplotlib can draw Korean with on this machine, or None."""
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in _CJK_FONTS if name in have), None)


def curve_legend() -> str:
    """What the picture's text would say, for a page whose language the plotting fonts
    cannot draw: the picture then carries numbers only and this goes into its caption."""
    return _("Left: training loss per epoch; right: validation accuracy per epoch. Solid "
             "line with circles: your block; dashed line with squares: the reference block.")


def curve_has_words() -> bool:
    """Whether ``curve_png`` can write its words in the current language here (False: the
    fonts on this machine cannot draw it, so the picture carries numbers only and
    ``curve_legend`` goes into its caption)."""
    return current() == DEFAULT or hangul_font() is not None


def curve_png(student: dict, reference: dict | None = None) -> bytes:
    """PNG of the student's (and the reference's) validation accuracy and training loss,
    its words in the current language (see ``curve_has_words``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = None if current() == DEFAULT else hangul_font()
    with plt.rc_context({"font.family": [font]} if font else {}):
        fig, axes = plt.subplots(1, 2, figsize=(7.5, 2.8))
        _draw(axes, student, reference, curve_has_words())
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
    return buf.getvalue()


def _draw(axes, student: dict, reference: dict | None, words: bool) -> None:
    from matplotlib.ticker import MaxNLocator

    ax_loss, ax_acc = axes
    for result, label, style in ((student, _("your block"), "-o"),
                                 (reference, _("reference"), "--s")):
        hist = (result or {}).get("history") or {}
        losses, accs = hist.get("train_loss") or [], hist.get("val_acc") or []
        xs = range(1, len(losses) + 1)
        label = label if words else None
        if losses:  # None or infinity: a diverged epoch, left as a gap
            ax_loss.plot(xs, [v if v is not None and math.isfinite(v) else float("nan")
                              for v in losses], style, ms=3, label=label)
        if accs:
            ax_acc.plot(range(1, len(accs) + 1), accs, style, ms=3, label=label)
    if words:
        ax_loss.set(title=_("training loss"), xlabel=_("epoch"))
        ax_acc.set(title=_("validation accuracy"), xlabel=_("epoch"))
    ax_acc.set(ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if words:
            ax.legend(fontsize=8)
