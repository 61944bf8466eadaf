"""Does the trainer capture its training step as a CUDA graph, agree with the eager run on
the same seed, and fall back to eager (saying why) when a model cannot be captured? And
does the grader tell a student whose block fell back?

The GPU tests carry the ``gpu`` marker (skipped without CUDA, with the reason); the rest
check on the CPU what decides whether a graph is tried and what is recorded.
"""
from __future__ import annotations

import math

import pytest
import torch
from test_trainer import Quadrants, TinyNet, fit
from torch import nn

from cnncourse import config, models
from cnncourse.graphs import WARMUP, GraphStep
from cnncourse.trainer import History, Trainer

# Eager and graph runs of one seed differ only in the order of floating-point sums (the
# schedule's rate is a float32 tensor in the graph, a Python float eagerly; cuDNN may pick
# other kernels once captured). Over 3 epochs of the tiny model, in float32:
WEIGHT_RTOL, WEIGHT_ATOL = 1e-3, 1e-4   # every trained weight
LOSS_RTOL = 1e-3                        # every epoch's training loss
ACC_ATOL = 1.5 / 64                     # validation accuracy: at most one image of 64


# --- on any machine ---------------------------------------------------------------------------
def test_is_the_graph_switch_read_from_the_environment(monkeypatch):
    monkeypatch.delenv(config.GRAPH_ENV, raising=False)
    assert config.cuda_graph_requested()
    for off in ("0", "off", "false", "no"):
        monkeypatch.setenv(config.GRAPH_ENV, off)
        assert not config.cuda_graph_requested(), off
    monkeypatch.setenv(config.GRAPH_ENV, "1")
    assert config.cuda_graph_requested()


def test_is_a_graph_tried_only_on_cuda_and_never_with_compile(monkeypatch):
    monkeypatch.delenv(config.GRAPH_ENV, raising=False)
    assert not Trainer(device="cpu").cuda_graph
    assert Trainer(device="cuda").cuda_graph
    assert not Trainer(device="cuda", compile=True).cuda_graph   # compile captures itself
    assert not Trainer(device="cuda", cuda_graph=False).cuda_graph
    monkeypatch.setenv(config.GRAPH_ENV, "0")
    assert not Trainer(device="cuda").cuda_graph
    assert Trainer(device="cuda", cuda_graph=True).cuda_graph    # the argument wins


def test_does_a_cpu_run_record_its_steps_as_eager():
    history = fit(max_epochs=1)
    assert history.step_mode == "eager"
    assert History(**history.to_dict()).step_mode == "eager"


def test_does_the_grader_tell_a_student_whose_block_fell_back(monkeypatch):
    from autograder.checking.training import step_note

    fell = {"step_mode": "eager (capture failed: RuntimeError: CUDA error: operation not "
                         "permitted when stream is capturing)"}
    note = step_note(fell, {"step_mode": "cuda graph"})
    assert "operation not permitted" in note and "eager" in note
    assert "CUDA graph" in note
    assert step_note({"step_mode": "cuda graph"}, {"step_mode": "cuda graph"}) == ""
    assert step_note({"step_mode": "eager"}, {"step_mode": "eager"}) == ""   # a CPU run
    assert step_note({}, {}) == ""                                         # an older worker


def test_does_the_starting_machine_decide_whether_jobs_and_the_reference_capture(
        monkeypatch, tmp_path):
    """CNN_CUDA_GRAPH where the run was started travels in the run's settings (to Dask
    workers too, in RunRequest): a worker's own environment saying otherwise does not
    count. Only the plumbing can be seen on the CPU: the reference run is replaced by a
    recorder of what it was asked, the data by a path."""
    from autograder.assignments import get_assignment
    from autograder.executors.dask_worker import RunRequest
    from autograder.jobs import RunSettings
    from autograder.parts import residual_training

    asked = []

    def reference(profile, cache, timeout=None, cuda_graph=None):
        asked.append(cuda_graph)
        return {"val_acc": 0.9, "seconds": 8.0, "device_name": "H200", "step_mode": "eager"}

    monkeypatch.setattr(residual_training, "reference_result", reference)
    part = next(p for p in get_assignment("assignment1").parts
                if p.name == "residual_training")
    monkeypatch.setattr(part, "fetch", lambda: tmp_path / "data" / "FashionMNIST" / "raw")
    monkeypatch.setenv(config.GRAPH_ENV, "1")           # this worker's own say: ignored
    for wanted in (False, True):
        prepared = part.prepare(2.0, RunSettings("full", "cuda", cache_dir=tmp_path,
                                                 cuda_graph=wanted))
        assert prepared.env[config.GRAPH_ENV] == ("1" if wanted else "0")
    assert asked == [False, True]
    monkeypatch.setenv(config.GRAPH_ENV, "0")
    from autograder.pipeline import _cuda_graph
    assert _cuda_graph() is False and RunRequest("assignment1", "full").cuda_graph is True


# --- on a GPU ---------------------------------------------------------------------------------
def _cuda_fit(model, graph: bool, epochs: int = 3, **settings) -> History:
    return Trainer(max_epochs=epochs, device="cuda", seed=3, plot=False, progress=False,
                   cuda_graph=graph, amp=False, **settings).fit(model, Quadrants())


@pytest.mark.gpu
@pytest.mark.parametrize("schedule", ["onecycle", None])
def test_do_eager_and_graph_runs_agree_on_the_same_seed(schedule):
    runs = {}
    for graph in (False, True):
        model = TinyNet()
        history = _cuda_fit(model, graph, schedule=schedule)
        runs[graph] = (history, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    (eager, w_eager), (captured, w_graph) = runs[False], runs[True]
    assert eager.step_mode == "eager" and captured.step_mode == "cuda graph"
    for a, b in zip(eager.train_loss, captured.train_loss, strict=True):
        assert math.isclose(a, b, rel_tol=LOSS_RTOL), (eager.train_loss, captured.train_loss)
    for a, b in zip(eager.val_acc, captured.val_acc, strict=True):
        assert abs(a - b) <= ACC_ATOL, (eager.val_acc, captured.val_acc)
    for key, value in w_eager.items():
        if value.is_floating_point():
            torch.testing.assert_close(w_graph[key], value, rtol=WEIGHT_RTOL, atol=WEIGHT_ATOL)
        else:
            assert torch.equal(w_graph[key], value), key   # BN's num_batches_tracked


class SyncingNet(TinyNet):
    """A model that reads a number back to Python in every forward: capture must fail."""

    def forward(self, X):
        out = self.net(X)
        if out.abs().max().item() > 1e6:  # a branch on data: a host sync
            out = out / 1e6
        return out


@pytest.mark.gpu
def test_does_a_model_that_syncs_fall_back_to_eager_and_say_why():
    eager_model, model = SyncingNet(), SyncingNet()
    eager = _cuda_fit(eager_model, graph=False)
    history = _cuda_fit(model, graph=True)
    assert history.step_mode.startswith("eager (capture failed: "), history.step_mode
    assert history.epochs == 3 and history.stopped is None
    # the failed capture left nothing behind: the run goes on as the eager run does (the
    # rate is a float32 tensor after the attempt, hence the tolerance)
    for a, b in zip(eager.train_loss, history.train_loss, strict=True):
        assert math.isclose(a, b, rel_tol=LOSS_RTOL), (eager.train_loss, history.train_loss)
    for key, value in eager_model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=WEIGHT_RTOL,
                                   atol=WEIGHT_ATOL)


@pytest.mark.gpu
def test_does_a_resnet_with_batch_norm_capture():
    data = Quadrants(side=32, num_train=128, num_val=32, batch_size=16)
    model = models.ResNet18(arch=((1, 16), (1, 32)), num_classes=4)
    history = Trainer(max_epochs=2, device="cuda", plot=False, progress=False).fit(model, data)
    assert history.step_mode == "cuda graph"
    assert all(math.isfinite(v) for v in history.train_loss)


@pytest.mark.gpu
def test_does_the_step_count_cover_warm_up_capture_and_replays():
    model = TinyNet().to("cuda")
    model.initialize(torch.zeros(2, 1, 12, 12, device="cuda"))
    optimizer = model.configure_optimizers()
    X, y = torch.randn(64, 1, 12, 12, device="cuda"), torch.arange(64, device="cuda") % 4
    calls = []

    def body(idx, loss_sum, correct):
        calls.append(torch.cuda.is_current_stream_capturing())
        loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()

    step = GraphStep(model, optimizer, [1.0] * 10, 16, torch.device("cuda"), body)
    for i in range(10):
        step.step(torch.arange(16, device="cuda") + (i % 4) * 16)
    torch.cuda.synchronize()
    # WARMUP eager calls, one call while capturing, then replays that call no Python
    assert calls == [False] * WARMUP + [True]
    assert step.mode == "cuda graph" and step.steps == 10
