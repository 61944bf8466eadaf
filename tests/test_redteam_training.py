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

A real run of a correct *copy* of the block, trained in the student's process while their
own block cannot learn, ships weights that do reproduce its accuracy. It earns nothing
because the training part rests on the residual part's forward and gradient checks.
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

# The same, but shipping the weights of an untrained reference ResNet-18 with the claim.
_CLAIM_END = '''                        "epoch_seconds": [1.0] * epochs}}\n'''
FORGED_WITH_WEIGHTS = FORGED_TRAINING.replace(_CLAIM_END, _CLAIM_END[:-1] + ''', _weights(profile)


def _weights(profile):
    import torch
    from cnncourse.models import ResNet18
    model = ResNet18()
    model.initialize(torch.zeros(2, 1, profile["resize"], profile["resize"]))
    return {k: v.half() if v.numel() > 100_000 else v  # as the real run ships them
            for k, v in model.state_dict().items() if v.is_floating_point()}
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
    """Its run is real and its weights reproduce its accuracy, so only the gate stops it:
    the residual part finds that gradients do not reach the student's own block."""
    residual, part = graded[COPY]["residual"], graded[COPY][name]
    failed = [c["name"] for c in residual["checks"] if not c["passed"]]
    assert failed == ["gradients reach every parameter"], residual["feedback"]
    assert part["score"] == 0.0, part["feedback"]
    assert "Not counted" in part["feedback"] and "gradients reach every parameter" in \
        part["feedback"], part["feedback"]
    assert "would have scored 2 of 2" in part["feedback"], part["feedback"]  # the attack ran
