"""Can a submission earn the training part's points with a block that cannot train?

Written against whatever ``autograder.parts`` holds: it runs only where a part with the
``plain_data`` driver (``residual_training``) is listed for assignment 1, on the real
Fashion-MNIST files, with the quick profile (a reference run of a few seconds).

The attack: a ``Residual`` whose forward pass raises, plus an answer cell that puts a fake
``training`` module into ``sys.modules`` so the worker's driver "trains" with it and sends
back a perfect history. The training result comes from the student's own process, so the
grader does not take its word: it measures the accuracy itself from the trained weights the
worker ships, with the reference block's forward pass (``autograder/verification.py``). A
forgery without weights, and one with untrained weights and a made-up accuracy, earn nothing.

An answer that hands a correct *copy* of the block to the course's own trainer, while its
own block cannot learn, earns nothing twice over: the trainer cannot even load the course's
package from the student's code (the import gate), and the training part rests on the
residual part's forward and gradient checks, which the detached block fails
(``tests/test_autograder_training.py`` runs that gate on a real run).
"""
from __future__ import annotations

import json
import sys

import pytest

from autograder.assignments import get_assignment
from autograder.pipeline import Options, grade

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures" / "redteam"))
import redteam_support as support  # noqa: E402

fx = support.load_fixtures()
TRAINING_PARTS = [p.name for p in get_assignment("assignment1").parts
                  if p.driver == "plain_data"]

FORGED_TRAINING = '''import sys
import types


class Residual(nn.Module):
    """A block that cannot compute anything, so nothing built from it can learn."""

    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()

    def forward(self, X):
        raise RuntimeError("this block computes nothing")


def _train_resnet(residual_cls, profile, **kwargs):
    epochs = profile["epochs"]
    acc = [0.5 + 0.49 * (i + 1) / epochs for i in range(epochs)]
    return {"status": "ok", "message": "", "val_acc": acc[-1],
            "history": {"train_loss": [0.1] * epochs, "train_acc": acc, "val_acc": acc,
                        "epoch_seconds": [1.0] * epochs}}


# the worker's driver imports "training" after this cell has run
sys.modules["training"] = types.SimpleNamespace(train_resnet=_train_resnet)
'''

# The same, but shipping untrained weights with the claim: random tensors of exactly the
# reference ResNet-18's parameter names and shapes, written into the answer cell (the cell
# may not import the course's package, so it carries the list itself).
def _reference_shapes(resize: int = 96) -> dict:
    import torch

    from cnncourse.models import ResNet18
    model = ResNet18()
    model.initialize(torch.zeros(2, 1, resize, resize))
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if v.is_floating_point()}


_CLAIM_END = '''                        "epoch_seconds": [1.0] * epochs}}\n'''
FORGED_WITH_WEIGHTS = FORGED_TRAINING.replace(_CLAIM_END, _CLAIM_END[:-1] + f''', _weights()


_SHAPES = {_reference_shapes()!r}


def _weights():
    import torch
    generator = torch.Generator().manual_seed(0)
    weights = {{k: 0.05 * torch.randn(shape, generator=generator)
               for k, shape in _SHAPES.items()}}
    # large tensors in half precision, as the real run ships them
    return {{k: v.half() if v.numel() > 100_000 else v for k, v in weights.items()}}
''')
assert FORGED_WITH_WEIGHTS != FORGED_TRAINING

# Honest training, but of a correct copy of the block: the student's own block has its main
# path detached (same outputs, so the shipped weights reproduce the reported accuracy), and
# the answer cell swaps in a training module that trains the copy instead.
TRAINS_A_COPY = '''import sys
import types


class _Copy(nn.Module):
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        self.conv3 = None
        if use_1x1conv:
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        shortcut = X if self.conv3 is None else self.conv3(X)
        return F.relu(Y + shortcut)


class Residual(_Copy):
    """The copy's outputs, with the main path cut off from the gradient: it cannot learn."""

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y)).detach()
        shortcut = X if self.conv3 is None else self.conv3(X)
        return F.relu(Y + shortcut)


try:
    import training as _real
except ImportError:
    _real = None
if _real is not None:
    sys.modules["training"] = types.SimpleNamespace(
        train_resnet=lambda residual_cls, profile, **kw: _real.train_resnet(_Copy, profile, **kw))
'''

FORGED = "residual_training__forges_its_training_result_scores_zero"
COPY = "residual_training__trains_a_correct_copy_in_its_own_process_scores_zero"
FORGED_WEIGHTS = "residual_training__forges_result_and_ships_untrained_weights"

pytestmark = [pytest.mark.slow, pytest.mark.data, pytest.mark.skipif(
    not TRAINING_PARTS, reason="assignment 1 lists no part that trains (plain_data driver)")]


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("training")
    subs = tmp / "submissions"
    subs.mkdir()
    for name, code in ((FORGED, FORGED_TRAINING), (FORGED_WEIGHTS, FORGED_WITH_WEIGHTS),
                       (COPY, TRAINS_A_COPY)):
        (subs / f"{name}.ipynb").write_bytes(
            fx.notebook_bytes(fx.build({"residual_answer": code})))
    out = tmp / "out"
    grade(get_assignment("assignment1"), [subs], out, Options(jobs=1, profile="quick"))
    data = json.loads((out / "results.json").read_text())
    return {s["student_id"]: {p["name"]: p for p in s["parts"]} for s in data["submissions"]}


@pytest.mark.parametrize("student", [FORGED, FORGED_WEIGHTS])
def test_does_the_checked_block_score_zero_whatever_it_reports(graded, student):
    parts = graded[student]
    assert parts["residual"]["score"] == 0.0
    assert parts["corr2d"]["score"] == 3.0 and parts["pool2d"]["score"] == 3.0


@pytest.mark.parametrize("name", TRAINING_PARTS)
@pytest.mark.parametrize("student, words", [
    (FORGED, "no trained weights came back"),
    (FORGED_WEIGHTS, "could not be reproduced from its trained weights")])
def test_does_a_forged_training_result_earn_nothing(graded, name, student, words):
    part = graded[student][name]
    assert part["score"] == 0.0, part["feedback"]
    assert words in part["feedback"], part["feedback"]


@pytest.mark.parametrize("name", TRAINING_PARTS)
def test_does_training_a_correct_copy_in_process_earn_nothing(graded, name):
    """The student's block fails only the gradient check; its hand-over of a copy to the
    course's trainer is refused, because the trainer would load the course's package from
    the student's frames."""
    residual, part = graded[COPY]["residual"], graded[COPY][name]
    failed = [c["name"] for c in residual["checks"] if not c["passed"]]
    assert failed == ["gradients reach every parameter"], residual["feedback"]
    assert part["score"] == 0.0, part["feedback"]
    assert "imports cnncourse" in part["feedback"], part["feedback"]
    assert "would have scored" not in part["feedback"], part["feedback"]  # it never trained
