"""What one ``Trainer.fit`` records: per-epoch metrics, a plot of them and one-line summaries.

``cnncourse.trainer`` re-exports ``History`` and ``describe_run``, where the chapters import them.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .config import quick_mode

__all__ = ["History", "describe_run"]


@dataclass
class History:
    """Per-epoch metrics of one ``fit``; ``val_acc[-1]`` is the final validation accuracy."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    device: str = ""
    device_name: str = ""
    num_train: int = 0
    num_val: int = 0
    setup_seconds: float = 0.0  # data transfer, lazy-layer materialization, compilation warm-up
    stopped: str | None = None  # why training ended early (e.g. "non-finite loss"), else None
    # how each step ran: "eager", "compiled", "cuda graph" or "eager (capture failed: why)"
    step_mode: str = "eager"

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def to_dict(self) -> dict:
        return asdict(self)

    def examples_per_second(self) -> float:
        total = sum(self.epoch_seconds)
        return self.num_train * self.epochs / total if total else 0.0

    def plot(self, ax=None, title: str | None = None):
        """Training loss and accuracy with validation accuracy per epoch; returns the figure."""
        import matplotlib.pyplot as plt

        own = ax is None
        if own:
            fig, ax = plt.subplots(figsize=(5.0, 3.2))
        else:
            fig = ax.figure
        ax.clear()
        x = list(range(1, self.epochs + 1))
        ax.plot(x, self.train_loss, "-o", ms=3, label="train loss")
        ax.plot(x, self.train_acc, "--s", ms=3, label="train acc")
        ax.plot(x, self.val_acc, "-.^", ms=3, label="val acc")
        ax.set_xlabel("epoch")
        ax.set_xlim(0.5, max(self.epochs, 1) + 0.5)
        finite = [v for v in self.train_loss if math.isfinite(v)]
        ax.set_ylim(0, max([1.0, *finite]) * 1.05)  # a diverged run still plots
        ax.grid(alpha=0.3)
        ax.legend(loc="center right", fontsize=8)
        if title:
            ax.set_title(title, fontsize=10)
        if own:  # a caller's figure keeps its own layout engine
            fig.tight_layout()
        return fig

    def summary(self) -> str:
        if not self.epochs:
            return "no epochs run"
        return (f"{self.epochs} epochs on {self.device_name or self.device}: "
                f"train loss {self.train_loss[-1]:.3f}, train acc {self.train_acc[-1]:.3f}, "
                f"val acc {self.val_acc[-1]:.3f}; {sum(self.epoch_seconds):.1f} s "
                f"({self.examples_per_second():,.0f} examples/s)")


def _how_stepped(step_mode: str) -> str:
    """How the steps ran, when not plainly one by one: the time depends on it."""
    if step_mode == "cuda graph":
        return " (each step replayed as a CUDA graph)"
    if step_mode == "compiled":
        return " (torch.compile)"
    if step_mode.startswith("eager (capture failed"):
        return " (step by step: the CUDA graph capture failed)"
    return ""


def describe_run(history: History, data, wall: float,
                 reference: float | None = None) -> str:
    """One honest line about a training run: its kind, size, hardware, time and result.

    ``reference``, when given, is a 10-epoch accuracy to quote beside the result, as
    "(d2l 1.0.3 after 10 full epochs: X)". By default (None) nothing is appended: d2l's
    pages show its training runs only as plots and print no such figure, so the chapters
    quote none.
    """
    kind = "REDUCED run (CNN_QUICK=1)" if quick_mode() else "Full run"
    note = f", stopped early: {history.stopped}" if history.stopped else ""
    line = (f"{kind}: {history.epochs} epochs on {len(data.train):,} training images{note}; "
            f"{history.device_name}{_how_stepped(history.step_mode)}; {wall:.0f} s wall "
            f"time; final validation accuracy "
            f"{history.val_acc[-1]:.3f} on {len(data.val):,} images")
    if reference is not None:
        line += f" (d2l 1.0.3 after 10 full epochs: {reference:.2f})"
    return line
