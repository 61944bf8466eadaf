"""The whole training step as one CUDA graph, replayed once per batch.

A ResNet-18 step at 96x96 on an H200 took 8.8 ms, most of it Python launching a few
hundred kernels one by one (BENCHMARKS.md). After ``WARMUP`` ordinary steps (which also
create the optimizer's momentum buffers), the step (batch gather, forward under autocast,
loss, backward, optimizer step, the epoch's running sums) is captured once with
``torch.cuda.graph`` and then replayed: one launch per batch. What changes from step to
step lives in device tensors that the graph reads: the batch's indices and the learning
rate (``lr`` of each parameter group becomes a 0-d tensor, and the schedule is a table on
the device copied into it before each step), so the schedule needs no recapture.

Capture is tried, never assumed: a model that synchronises with the host (``.item()``,
``print`` of a tensor, a branch on a tensor's value) or does anything else a graph cannot
hold makes the capture fail. The model's and optimizer's tensors are then put back as
they were before the attempt, the run goes on eagerly, and ``reason`` says why; the
``Trainer`` records it in ``History.step_mode``. A model whose Python code takes a
different path on each call without touching tensors (a ``random.random()`` branch) is
replayed along the path it took while captured: a limit of every CUDA graph.
"""
from __future__ import annotations

from collections import deque

import torch

__all__ = ["GraphStep", "WARMUP", "LOOKAHEAD"]

WARMUP = 3      # eager steps before capture (PyTorch's example uses 3; cuDNN picks kernels)
LOOKAHEAD = 4   # replays queued ahead of the GPU, so the per-step time check stays honest


def _root_cause(exc: BaseException) -> BaseException:
    """The first error of a chain: a failed capture raises again when the capture ends."""
    seen = {id(exc)}
    while exc.__context__ is not None and id(exc.__context__) not in seen:
        exc = exc.__context__
        seen.add(id(exc))
    return exc


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return text if len(text) <= limit else text[:limit] + "..."


class GraphStep:
    """One ``fit``'s training step on CUDA: eager for ``WARMUP`` steps, then captured and
    replayed. ``body(idx, loss_sum, correct)`` runs one step on the batch ``idx`` (a
    device tensor of indices) and adds its loss and correct count to the two sums; it
    must not zero or set gradients (this class does)."""

    def __init__(self, model, optimizer, factors: list[float] | None, batch: int,
                 device: torch.device, body):
        self.model, self.optimizer, self.body, self.device = model, optimizer, body, device
        self.idx = torch.zeros(batch, dtype=torch.long, device=device)
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.lrs, self.tables = [], []
        for group in optimizer.param_groups:  # the rate as a device tensor, read by the graph
            base = float(group["lr"])
            group["lr"] = torch.tensor(base, device=device)
            self.lrs.append(group["lr"])
            self.tables.append(None if factors is None else
                               torch.tensor(factors, device=device) * base)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.reason: str | None = None  # why the run went on eagerly, if it did
        self.steps = 0
        self.pending: deque = deque()

    @property
    def mode(self) -> str:
        """"cuda graph", "eager (capture failed: ...)", or "eager" before capture."""
        if self.graph is not None:
            return "cuda graph"
        return f"eager (capture failed: {self.reason})" if self.reason else "eager"

    def new_epoch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The epoch's sums, zeroed on the device (the graph adds into these tensors)."""
        self.loss_sum.zero_()
        self.correct.zero_()
        return self.loss_sum, self.correct

    def step(self, idx: torch.Tensor) -> None:
        """Train on the batch ``idx``: eagerly while warming up or after a failed
        capture, else one replay."""
        self.idx.copy_(idx)
        for lr, table in zip(self.lrs, self.tables, strict=True):
            if table is not None:
                lr.copy_(table[min(self.steps, len(table) - 1)])
        if self.graph is None and self.reason is None and self.steps >= WARMUP:
            self._capture()
        if self.graph is not None:
            self.graph.replay()
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self._eager()
        self.steps += 1
        self._bound_lookahead()

    def _eager(self) -> None:
        if self.steps < WARMUP:  # warm-up on a side stream, as capture wants
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                self.body(self.idx, self.loss_sum, self.correct)
            torch.cuda.current_stream(self.device).wait_stream(side)
        else:
            self.body(self.idx, self.loss_sum, self.correct)

    def _tensors(self) -> list[torch.Tensor]:
        """Every tensor a step may write: parameters, buffers, optimizer state, sums."""
        out = [*self.model.parameters(), *self.model.buffers(), self.loss_sum, self.correct]
        for state in self.optimizer.state.values():
            out += [v for v in state.values() if isinstance(v, torch.Tensor)]
        return out

    def _capture(self) -> None:
        torch.cuda.synchronize(self.device)
        tensors = self._tensors()
        saved = [t.detach().clone() for t in tensors]
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)  # grads come from the graph's pool
        try:
            with torch.cuda.graph(graph):
                self.body(self.idx, self.loss_sum, self.correct)
        except Exception as exc:  # noqa: BLE001 - any failure: this run goes on eagerly
            self.reason = _one_line(_root_cause(exc))
            del graph
            self.optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                for t, old in zip(tensors, saved, strict=True):
                    t.copy_(old)
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            return
        self.graph = graph  # captured, not yet run: step() replays it for this batch

    def _bound_lookahead(self) -> None:
        """Keep at most ``LOOKAHEAD`` steps queued: a replay returns at once, and without
        this the host would queue a whole epoch before the time budget is looked at."""
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))
        self.pending.append(event)
        if len(self.pending) > LOOKAHEAD:
            self.pending.popleft().synchronize()
