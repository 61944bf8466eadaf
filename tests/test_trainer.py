"""Does the fast trainer train, record, repeat itself and stop the way its docstrings promise?

The data is synthetic and tiny (a bright square in one of four quadrants; the label is the
quadrant), so every fit takes a fraction of a second on a CPU.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import matplotlib
import pytest
import torch
from torch import nn

from cnncourse import models
from cnncourse.trainer import History, Trainer, describe_run

matplotlib.use("Agg")


@dataclass
class Quadrants:
    """A data module with the interface the trainer uses: ``batch_size`` and ``tensors()``."""

    num_train: int = 256
    num_val: int = 64
    batch_size: int = 32
    side: int = 12
    seed: int = 0
    poison: bool = False  # one training image full of NaN: the loss cannot stay finite
    splits: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        g = torch.Generator().manual_seed(self.seed)
        self.splits = {True: self._make(self.num_train, g), False: self._make(self.num_val, g)}
        if self.poison:
            self.splits[True][0][0] = math.nan

    def _make(self, n: int, g: torch.Generator):
        y = torch.arange(n) % 4
        X = 0.2 * torch.rand(n, 1, self.side, self.side, generator=g)  # (n, 1, side, side)
        half = self.side // 2
        for k in range(4):
            r, c = divmod(k, 2)  # quadrant k: row r, column c
            X[y == k, :, r * half + 1:r * half + 4, c * half + 1:c * half + 4] += 1.0
        return X, y

    def tensors(self, train: bool, device="cpu", dtype=torch.float32):
        X, y = self.splits[train]
        return X.to(device, dtype), y.to(device), True


class TinyNet(models.Classifier):
    """Conv, ReLU, pool and one dense layer: enough to find the bright quadrant."""

    def __init__(self, lr: float = 0.1, side: int = 12):
        super().__init__(lr=lr, momentum=0.9)
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Flatten(), nn.Linear(4 * (side // 2) ** 2, 4))


def fit(max_epochs: int = 3, data: Quadrants | None = None, model=None, **settings) -> History:
    settings = {"plot": False, "progress": False, "device": "cpu", **settings}
    return Trainer(max_epochs=max_epochs, **settings).fit(model or TinyNet(), data or Quadrants())


# --- a normal run ---------------------------------------------------------------------------
def test_does_fit_record_one_entry_per_epoch():
    history = fit(max_epochs=3)
    assert history.epochs == 3 and history.stopped is None
    for name in ("train_loss", "train_acc", "val_loss", "val_acc", "epoch_seconds"):
        assert len(getattr(history, name)) == 3, name
    assert history.device == "cpu"
    assert (history.num_train, history.num_val) == (256, 64)  # 8 full batches of 32
    assert all(0.0 <= a <= 1.0 for a in history.train_acc + history.val_acc)
    assert all(s > 0 for s in history.epoch_seconds)


def test_does_the_loss_go_down_and_the_accuracy_up():
    history = fit(max_epochs=6)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0], history.train_loss
    assert history.val_acc[-1] >= 0.9, history.val_acc


def test_does_the_same_seed_give_the_same_history_and_weights():
    runs = []
    for _ in range(2):
        model = TinyNet()
        history = fit(model=model, seed=7)
        runs.append((history, model.state_dict()))
    (first, weights), (second, weights2) = runs
    assert (first.train_loss, first.train_acc, first.val_loss, first.val_acc) == \
        (second.train_loss, second.train_acc, second.val_loss, second.val_acc)
    for key in weights:
        assert torch.equal(weights[key], weights2[key]), key


def test_does_another_seed_give_another_run():
    assert fit(seed=1).train_loss != fit(seed=2).train_loss


def test_does_the_trainer_seed_fix_a_resnet_built_at_any_time():
    data = Quadrants(side=32, num_train=64, num_val=32, batch_size=16)
    losses = []
    for construction_seed in (1, 2):
        torch.manual_seed(construction_seed)  # whatever ran before the model was built
        model = models.ResNet18(arch=((1, 64), (1, 32)), num_classes=4)
        losses.append(fit(max_epochs=1, data=data, model=model, seed=0).train_loss)
    assert losses[0] == losses[1]


def test_does_a_larger_batch_size_override_the_data_module():
    history = fit(max_epochs=1, batch_size=100)
    assert history.num_train == 200  # two full batches; the last 56 examples are dropped


def test_does_a_training_set_smaller_than_a_batch_still_train():
    history = fit(max_epochs=2, data=Quadrants(num_train=20, batch_size=32))
    assert history.num_train == 20 and history.epochs == 2


def test_does_it_train_a_course_model_on_the_course_data_module(tmp_path):
    from test_data import fake_fashion_mnist

    from cnncourse.data import FashionMNIST

    fake_fashion_mnist(tmp_path / "FashionMNIST" / "raw", num_train=64, num_val=32)
    data = FashionMNIST(batch_size=16, root=tmp_path, download=False)
    history = fit(max_epochs=2, data=data, model=models.LeNet())
    assert history.epochs == 2 and all(map(math.isfinite, history.train_loss))


# --- stopping early -------------------------------------------------------------------------
def test_does_the_time_budget_stop_training_within_the_epoch_that_used_it_up():
    history = fit(max_epochs=50, time_budget=0.0)
    assert history.epochs == 1  # one step, then evaluated and recorded as a (short) epoch
    assert history.stopped and "time budget" in history.stopped
    assert math.isfinite(history.train_loss[0]) and 0.0 <= history.val_acc[0] <= 1.0


def test_does_a_run_that_ends_within_its_budget_not_count_as_stopped():
    history = fit(max_epochs=2, time_budget=1e6)
    assert history.epochs == 2 and history.stopped is None


def test_does_a_non_finite_loss_stop_training():
    history = fit(max_epochs=5, data=Quadrants(poison=True))
    assert history.epochs == 1
    assert history.stopped and "non-finite" in history.stopped
    assert not math.isfinite(history.train_loss[-1])


def test_can_a_diverged_history_still_be_plotted():
    import matplotlib.pyplot as plt

    history = History(train_loss=[2.3, math.inf], train_acc=[0.1, 0.1], val_loss=[2.3, 2.3],
                      val_acc=[0.1, 0.1], epoch_seconds=[1.0, 1.0])
    plt.close(history.plot())


def test_does_an_unknown_schedule_get_refused_by_name():
    with pytest.raises(ValueError, match="'cosine'"):
        Trainer(schedule="cosine")


def test_does_the_constant_schedule_keep_the_model_learning_rate():
    # schedule=None is d2l's constant rate; it must train as well on this easy task
    history = fit(max_epochs=6, schedule=None, model=TinyNet(lr=0.05))
    assert history.val_acc[-1] >= 0.9, history.val_acc


# --- reporting ----------------------------------------------------------------------------
def test_does_progress_print_one_line_per_epoch_outside_a_notebook(capsys):
    import matplotlib.pyplot as plt

    open_figures = plt.get_fignums()
    fit(max_epochs=2, progress=True, plot=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"epoch  1/2  train loss \d\.\d{3}  train acc \d\.\d{3}  "
                        r"val acc \d\.\d{3}  \(\d+\.\d s\)", lines[0]), lines[0]
    assert plt.get_fignums() == open_figures, "plot=True must not draw outside a notebook"


def test_does_a_terminal_get_the_bar_on_stderr_and_the_same_lines_on_stdout(capsys,
                                                                           monkeypatch):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    fit(max_epochs=2, progress=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch  2/2  train loss "), lines
    drawn = terminal.getvalue()
    assert drawn.startswith("\r[                              ] epoch 1/2"), drawn[:80]
    assert drawn.endswith("\r" + " " * 60 + "\r")  # blanked before each epoch's line
    assert "\n" not in drawn


def test_does_the_history_summarize_plot_and_serialize():
    import matplotlib.pyplot as plt

    history = fit(max_epochs=2)
    text = history.summary()
    assert text.startswith("2 epochs on CPU") and f"val acc {history.val_acc[-1]:.3f}" in text
    assert history.examples_per_second() > 0
    assert History(**history.to_dict()) == history
    fig = history.plot(title="quadrants")
    try:
        assert len(fig.axes[0].lines) == 3 and fig.axes[0].get_title() == "quadrants"
    finally:
        plt.close(fig)
    assert History().summary() == "no epochs run"


def test_does_describe_run_quote_a_reference_only_when_given_one(monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setenv("CNN_QUICK", "0")
    history = History(train_loss=[0.5, 0.4], train_acc=[0.8, 0.9], val_loss=[0.5, 0.45],
                      val_acc=[0.85, 0.875], device_name="CPU")
    data = SimpleNamespace(train=range(60_000), val=range(10_000))
    line = describe_run(history, data, 14.6)
    assert line == ("Full run: 2 epochs on 60,000 training images; CPU; 15 s wall time; "
                    "final validation accuracy 0.875 on 10,000 images")
    quoted = describe_run(history, data, 14.6, reference=0.9)
    assert quoted == line + " (d2l 1.0.3 after 10 full epochs: 0.90)"


def test_does_describe_run_say_how_the_steps_ran_when_it_matters(monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setenv("CNN_QUICK", "0")
    data = SimpleNamespace(train=range(60_000), val=range(10_000))
    lines = {}
    for mode in ("eager", "cuda graph", "compiled",
                 "eager (capture failed: RuntimeError: operation not permitted)"):
        history = History(train_loss=[0.5], train_acc=[0.8], val_loss=[0.5], val_acc=[0.9],
                          device_name="NVIDIA H200", step_mode=mode)
        lines[mode] = describe_run(history, data, 29.0).split("; ")[1]
    assert list(lines.values()) == [
        "NVIDIA H200", "NVIDIA H200 (each step replayed as a CUDA graph)",
        "NVIDIA H200 (torch.compile)",
        "NVIDIA H200 (step by step: the CUDA graph capture failed)"]
