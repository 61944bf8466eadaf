"""A fast trainer with the textbook's shape: ``Trainer(max_epochs=10).fit(model, data)``.

What makes it fast (each measured in BENCHMARKS.md):
- the whole dataset lives on the device as one tensor, scaled and resized once;
- no host synchronisation inside an epoch: loss and accuracy are summed on the device and
  read once per epoch, and so are the plot and the progress line;
- channels_last memory layout, bf16 autocast on CUDA, optional ``torch.compile``;
- a one-cycle learning-rate schedule (Smith & Topin, 2017) on top of the model's optimizer.
Runs are seeded: the same seed, device and settings give the same weights and history.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field, asdict

import torch

from .config import compile_requested, default_device, quick_mode

__all__ = ["Trainer", "History", "describe_run"]


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


def describe_run(history: History, data, wall: float, reference: float) -> str:
    """One honest line about a training run: its kind, size, hardware, time and result,
    beside d2l's published 10-epoch accuracy ``reference`` for the same model."""
    kind = "REDUCED run (CNN_QUICK=1)" if quick_mode() else "Full run"
    note = f", stopped early: {history.stopped}" if history.stopped else ""
    return (f"{kind}: {history.epochs} epochs on {len(data.train):,} training images{note}; "
            f"{history.device_name}; {wall:.0f} s wall time; final validation accuracy "
            f"{history.val_acc[-1]:.3f} on {len(data.val):,} images "
            f"(d2l 1.0.3 after 10 full epochs: {reference:.2f})")


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


class _Progress:
    """A progress bar on a terminal; one line per epoch anywhere else (notebooks, CI logs)."""

    def __init__(self, enabled: bool, epochs: int, steps: int):
        self.enabled, self.epochs, self.steps = enabled, epochs, steps
        self.tty = enabled and sys.stderr.isatty()
        self.last = 0.0

    def step(self, epoch: int, step: int) -> None:
        now = time.perf_counter()
        if self.tty and now - self.last > 0.2:  # the counter needs no device sync
            self.last = now
            done = (epoch * self.steps + step) / (self.epochs * self.steps)
            bar = "#" * int(30 * done)
            sys.stderr.write(f"\r[{bar:<30}] epoch {epoch + 1}/{self.epochs}")
            sys.stderr.flush()

    def epoch(self, history: History) -> None:
        if not self.enabled:
            return
        if self.tty:
            sys.stderr.write("\r" + " " * 60 + "\r")
        i = history.epochs
        print(f"epoch {i:>2}/{self.epochs}  train loss {history.train_loss[-1]:.3f}  "
              f"train acc {history.train_acc[-1]:.3f}  val acc {history.val_acc[-1]:.3f}  "
              f"({history.epoch_seconds[-1]:.1f} s)", flush=True)


class Trainer:
    """Train a ``Classifier`` on a ``FashionMNIST``-like data module.

    ``max_epochs``: passes over the training set. ``device``: "cuda"/"cpu" (default: CUDA when
    present, or ``$CNN_DEVICE``). ``compile``: wrap the model in ``torch.compile`` (default:
    ``$CNN_COMPILE``). ``schedule``: "onecycle" (warm up, then anneal to zero) or None (the
    model's constant rate, as in d2l). ``plot``: redraw the curves once per epoch in a
    notebook. ``batch_size``: overrides the data module's.
    """

    def __init__(self, max_epochs: int = 10, device: str | None = None, seed: int = 0,
                 compile: bool | None = None, schedule: str | None = "onecycle",
                 channels_last: bool = True, amp: bool | None = None, plot: bool = True,
                 progress: bool = True, batch_size: int | None = None,
                 time_budget: float | None = None):
        if schedule not in ("onecycle", None):
            raise ValueError(f"schedule must be 'onecycle' or None, not {schedule!r}")
        self.max_epochs, self.seed, self.schedule = max_epochs, seed, schedule
        self.device = torch.device(device or default_device())
        self.compile = compile_requested() if compile is None else compile
        self.channels_last, self.plot, self.progress = channels_last, plot, progress
        self.amp = (self.device.type == "cuda") if amp is None else amp
        self.batch_size, self.time_budget = batch_size, time_budget
        self.history: History | None = None

    # --- set-up -------------------------------------------------------------------------
    def _memory_format(self):
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def _prepare_model(self, model, X_example: torch.Tensor):
        torch.manual_seed(self.seed)
        if not getattr(model, "initialized", True):
            model.initialize(X_example[:2].float().cpu())
        model.to(self.device, memory_format=self._memory_format())
        return torch.compile(model) if self.compile else model

    def _scheduler(self, optimizer, total_steps: int):
        if self.schedule is None:
            return None
        # one-cycle: linear warm-up over the first 20% to the model's lr, cosine to 0 after
        warm = max(1, int(0.2 * total_steps))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            t = (step - warm) / max(1, total_steps - warm)
            return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def _autocast(self):
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast(self.device.type, enabled=False)

    # --- the loop -----------------------------------------------------------------------
    def fit(self, model, data) -> History:
        t0 = time.perf_counter()
        dtype = torch.bfloat16 if self.amp and self.device.type == "cuda" else torch.float32
        Xtr, ytr, tr_resized = data.tensors(True, self.device, dtype)
        Xva, yva, va_resized = data.tensors(False, self.device, dtype)
        batch = self.batch_size or data.batch_size
        n = len(ytr)
        # drop the last partial batch: shapes stay fixed, so a compiled model never recompiles
        steps = max(1, n // batch) if n >= batch else 1
        if n < batch:
            batch = n
        prep = (lambda x: x) if tr_resized else (lambda x: data.prepare_batch(x, dtype))
        prep_val = (lambda x: x) if va_resized else (lambda x: data.prepare_batch(x, dtype))
        example = prep(Xtr[:2])
        net = self._prepare_model(model, example)
        optimizer = model.configure_optimizers()
        scheduler = self._scheduler(optimizer, steps * self.max_epochs)
        mf = self._memory_format()
        gen = torch.Generator(device=self.device).manual_seed(self.seed)
        history = History(device=self.device.type, device_name=_device_name(self.device),
                          num_train=steps * batch, num_val=len(yva))
        self.history = history
        progress = _Progress(self.progress, self.max_epochs, steps)
        live = _LivePlot() if self.plot and _in_notebook() else None
        history.setup_seconds = time.perf_counter() - t0
        budget = None if self.time_budget is None else t0 + self.time_budget  # a deadline
        for epoch in range(self.max_epochs):
            _sync(self.device)
            start = time.perf_counter()
            model.train()
            loss_sum = torch.zeros((), device=self.device)
            correct = torch.zeros((), device=self.device, dtype=torch.long)
            order = torch.randperm(n, device=self.device, generator=gen)
            done, over = 0, False
            for step in range(steps):
                if budget is not None and (done or epoch) and time.perf_counter() > budget:
                    over = True  # checked per step: a slow model never runs a whole epoch over
                    break
                idx = order[step * batch:(step + 1) * batch]
                X = prep(Xtr[idx]).contiguous(memory_format=mf)
                y = ytr[idx]
                with self._autocast():
                    logits = net(X)
                loss = model.loss(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                loss_sum += loss.detach() * len(y)
                correct += (logits.argmax(dim=1) == y).sum()
                done += 1
                progress.step(epoch, step)
            if done == 0:  # out of time as this epoch began: the last one recorded stands
                history.stopped = f"time budget of {self.time_budget:g} s reached"
                break
            val_loss, val_acc = self.evaluate(model, Xva, yva, batch, prep_val)
            history.train_loss.append(loss_sum.item() / (done * batch))  # the one sync
            history.train_acc.append(correct.item() / (done * batch))
            history.val_loss.append(val_loss)
            history.val_acc.append(val_acc)
            _sync(self.device)
            history.epoch_seconds.append(time.perf_counter() - start)
            progress.epoch(history)
            if live is not None:
                live.update(history)
            if not math.isfinite(history.train_loss[-1]):
                history.stopped = f"non-finite training loss in epoch {epoch + 1}"
                break
            last = epoch == self.max_epochs - 1
            if over or (budget is not None and not last and time.perf_counter() > budget):
                history.stopped = f"time budget of {self.time_budget:g} s reached"
                break
        if live is not None:
            live.close()
        return history

    @torch.no_grad()
    def evaluate(self, model, X, y, batch: int, prep=None) -> tuple[float, float]:
        """(mean loss, accuracy) of ``model`` on tensors already on the device, batch by
        batch, with the memory format and autocast of training; ``prep`` resizes a batch
        of raw images when X is not resized yet. The autograder uses it too, so that its
        own measurement of a student's run matches the one made during training."""
        prep = prep or (lambda x: x)
        model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        mf = self._memory_format()
        for start in range(0, len(y), batch):
            xb = prep(X[start:start + batch]).contiguous(memory_format=mf)
            yb = y[start:start + batch]
            with self._autocast():
                logits = model(xb)  # eager: the last batch may be smaller
            loss_sum += model.loss(logits, yb) * len(yb)
            correct += (logits.argmax(dim=1) == yb).sum()
        n = max(1, len(y))
        return loss_sum.item() / n, correct.item() / n


class _LivePlot:
    """Redraws one figure in place once per epoch inside a notebook."""

    def __init__(self):
        import matplotlib.pyplot as plt
        from IPython.display import display

        self.plt = plt
        self.fig, self.ax = plt.subplots(figsize=(5.0, 3.2), layout="tight")
        self.handle = display(self.fig, display_id=True)

    def update(self, history: History) -> None:
        history.plot(ax=self.ax)
        self.handle.update(self.fig)

    def close(self) -> None:
        self.plt.close(self.fig)  # the last update stays in the cell's output


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import os
    import platform

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU ({platform.processor() or platform.machine()}, {cores} cores)"
