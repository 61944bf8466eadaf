"""A fast trainer with the textbook's shape: ``Trainer(max_epochs=10).fit(model, data)``.

What makes it fast (each measured in BENCHMARKS.md):
- the whole dataset lives on the device as one tensor, scaled and resized once;
- no host synchronisation inside an epoch: loss and accuracy are summed on the device and
  read once per epoch, and so are the plot and the progress line;
- channels_last memory layout, bf16 autocast on CUDA, optional ``torch.compile``;
- on CUDA, the whole training step captured once as a CUDA graph and replayed per batch
  (``graphs.GraphStep``; eager when capture fails, and ``History.step_mode`` says so);
- a one-cycle learning-rate schedule (Smith & Topin, 2017) on top of the model's optimizer.
Runs are seeded: the same seed, device and settings give the same weights and history.
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .config import compile_requested, cuda_graph_requested, default_device
from .graphs import GraphStep
from .history import History, describe_run
from .progress import Progress

__all__ = ["Trainer", "History", "describe_run"]


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


class _Progress:
    """The trainer's display: a bar on a terminal, one line per epoch on stdout everywhere."""

    def __init__(self, enabled: bool, epochs: int, steps: int):
        self.epochs, self.steps = epochs, steps
        self.out = Progress(sys.stderr, enabled, width=30, columns=60)

    def step(self, epoch: int, step: int) -> None:
        if self.out.tty:  # the counter needs no device sync
            done = (epoch * self.steps + step) / (self.epochs * self.steps)
            self.out.bar(done, f"epoch {epoch + 1}/{self.epochs}")

    def epoch(self, history: History) -> None:
        i = history.epochs
        self.out.line(f"epoch {i:>2}/{self.epochs}  train loss {history.train_loss[-1]:.3f}  "
                      f"train acc {history.train_acc[-1]:.3f}  val acc {history.val_acc[-1]:.3f}  "
                      f"({history.epoch_seconds[-1]:.1f} s)", stream=sys.stdout)


@dataclass
class _Run:
    """What one ``fit`` works on: the data on the device, the model and its optimizer."""

    model: object
    net: object  # the model, or its torch.compile wrapper
    optimizer: torch.optim.Optimizer
    scheduler: object  # a LambdaLR, or None
    Xtr: torch.Tensor
    ytr: torch.Tensor
    Xva: torch.Tensor
    yva: torch.Tensor
    prep: Callable
    prep_val: Callable
    batch: int
    steps: int
    gen: torch.Generator
    history: History
    progress: _Progress
    live: object  # a _LivePlot, or None
    budget: float | None  # a deadline on time.perf_counter, or None
    graph: GraphStep | None = None  # the captured step on CUDA, or None (eager)


class Trainer:
    """Train a ``Classifier`` on a ``FashionMNIST``-like data module.

    ``max_epochs``: passes over the training set. ``device``: "cuda"/"cpu" (default: CUDA when
    present, or ``$CNN_DEVICE``). ``compile``: wrap the model in ``torch.compile`` (default:
    ``$CNN_COMPILE``). ``schedule``: "onecycle" (warm up, then anneal to zero) or None (the
    model's constant rate, as in d2l). ``plot``: redraw the curves once per epoch in a
    notebook. ``batch_size``: overrides the data module's. ``cuda_graph``: on CUDA,
    capture the training step as a CUDA graph and replay it (default: yes, unless
    ``$CNN_CUDA_GRAPH`` is "0" or ``compile`` is on); ignored elsewhere.
    """

    def __init__(self, max_epochs: int = 10, device: str | None = None, seed: int = 0,
                 compile: bool | None = None, schedule: str | None = "onecycle",
                 channels_last: bool = True, amp: bool | None = None, plot: bool = True,
                 progress: bool = True, batch_size: int | None = None,
                 time_budget: float | None = None, cuda_graph: bool | None = None):
        if schedule not in ("onecycle", None):
            raise ValueError(f"schedule must be 'onecycle' or None, not {schedule!r}")
        self.max_epochs, self.seed, self.schedule = max_epochs, seed, schedule
        self.device = torch.device(device or default_device())
        self.compile = compile_requested() if compile is None else compile
        self.channels_last, self.plot, self.progress = channels_last, plot, progress
        self.amp = (self.device.type == "cuda") if amp is None else amp
        self.batch_size, self.time_budget = batch_size, time_budget
        graph = cuda_graph_requested() if cuda_graph is None else cuda_graph
        self.cuda_graph = graph and self.device.type == "cuda" and not self.compile
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

    def _factor(self, total_steps: int):
        """The schedule: step -> multiple of the model's rate, or None (constant)."""
        if self.schedule is None:
            return None
        # one-cycle: linear warm-up over the first 20% to the model's lr, cosine to 0 after
        warm = max(1, int(0.2 * total_steps))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            t = (step - warm) / max(1, total_steps - warm)
            return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

        return factor

    def _autocast(self):
        if self.amp and self.device.type == "cuda":
            # no cast cache under a CUDA graph: its tensors would outlive the capture
            return torch.autocast("cuda", dtype=torch.bfloat16,
                                  cache_enabled=not self.cuda_graph)
        return torch.autocast(self.device.type, enabled=False)

    # --- the loop -----------------------------------------------------------------------
    def fit(self, model, data) -> History:
        t0 = time.perf_counter()
        run = self._start(model, data, t0)
        history = run.history
        for epoch in range(self.max_epochs):
            _sync(self.device)
            start = time.perf_counter()
            loss_sum, correct, done, over = self._train_epoch(run, epoch)
            if done == 0:  # out of time as this epoch began: the last one recorded stands
                history.stopped = self._out_of_time()
                break
            self._record_epoch(run, start, loss_sum, correct, done)
            history.stopped = self._stop_reason(run, epoch, over)
            if history.stopped:
                break
        if run.live is not None:
            run.live.close()
        history.step_mode = ("compiled" if self.compile else
                             run.graph.mode if run.graph is not None else "eager")
        return history

    def _start(self, model, data, t0: float) -> _Run:
        """The data on the device, the model prepared, the optimizer, history and displays."""
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
        factor = self._factor(steps * self.max_epochs)
        scheduler = None
        if factor is not None and not self.cuda_graph:  # a graph reads its rate from a table
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        gen = torch.Generator(device=self.device).manual_seed(self.seed)
        history = History(device=self.device.type, device_name=_device_name(self.device),
                          num_train=steps * batch, num_val=len(yva))
        self.history = history
        progress = _Progress(self.progress, self.max_epochs, steps)
        live = _LivePlot() if self.plot and _in_notebook() else None
        history.setup_seconds = time.perf_counter() - t0
        budget = None if self.time_budget is None else t0 + self.time_budget  # a deadline
        run = _Run(model, net, optimizer, scheduler, Xtr, ytr, Xva, yva, prep, prep_val,
                   batch, steps, gen, history, progress, live, budget)
        if self.cuda_graph:
            factors = None if factor is None else [factor(i) for i in range(
                steps * self.max_epochs)]
            run.graph = GraphStep(model, optimizer, factors, batch, self.device,
                                  lambda idx, loss_sum, correct: self._step(
                                      run, idx, loss_sum, correct))
        return run

    def _train_epoch(self, run: _Run, epoch: int):
        """One pass in a fresh random order: (loss sum, correct count, steps done, out of time).

        The sums stay on the device; nothing here waits for it."""
        run.model.train()
        if run.graph is not None:
            loss_sum, correct = run.graph.new_epoch()
        else:
            loss_sum = torch.zeros((), device=self.device)
            correct = torch.zeros((), device=self.device, dtype=torch.long)
        n, batch = len(run.ytr), run.batch
        order = torch.randperm(n, device=self.device, generator=run.gen)
        done, over = 0, False
        for step in range(run.steps):
            if run.budget is not None and (done or epoch) and time.perf_counter() > run.budget:
                over = True  # checked per step: a slow model never runs a whole epoch over
                break
            idx = order[step * batch:(step + 1) * batch]
            if run.graph is not None:
                run.graph.step(idx)
            else:
                run.optimizer.zero_grad(set_to_none=True)
                self._step(run, idx, loss_sum, correct)
                if run.scheduler is not None:
                    run.scheduler.step()
            done += 1
            run.progress.step(epoch, step)
        return loss_sum, correct, done, over

    def _step(self, run: _Run, idx, loss_sum, correct) -> None:
        """One step on the batch ``idx``, its sums added on the device. With a CUDA graph
        this is what gets captured, so it reads and writes only device tensors."""
        X = run.prep(run.Xtr[idx]).contiguous(memory_format=self._memory_format())
        y = run.ytr[idx]
        with self._autocast():
            logits = run.net(X)
        loss = run.model.loss(logits, y)
        loss.backward()
        run.optimizer.step()
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(dim=1) == y).sum()

    def _record_epoch(self, run: _Run, start: float, loss_sum, correct, done: int) -> None:
        """Validate, read the epoch's sums (the one host sync), time it, show it."""
        history, seen = run.history, done * run.batch
        val_loss, val_acc = self.evaluate(run.model, run.Xva, run.yva, run.batch, run.prep_val)
        history.train_loss.append(loss_sum.item() / seen)  # the one sync
        history.train_acc.append(correct.item() / seen)
        history.val_loss.append(val_loss)
        history.val_acc.append(val_acc)
        _sync(self.device)
        history.epoch_seconds.append(time.perf_counter() - start)
        run.progress.epoch(history)
        if run.live is not None:
            run.live.update(history)

    def _stop_reason(self, run: _Run, epoch: int, over: bool) -> str | None:
        """Why training ends after this epoch (a non-finite loss, the time budget), else None."""
        if not math.isfinite(run.history.train_loss[-1]):
            return f"non-finite training loss in epoch {epoch + 1}"
        last = epoch == self.max_epochs - 1
        if over or (run.budget is not None and not last and time.perf_counter() > run.budget):
            return self._out_of_time()
        return None

    def _out_of_time(self) -> str:
        return f"time budget of {self.time_budget:g} s reached"

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
