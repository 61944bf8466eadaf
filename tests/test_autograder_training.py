"""Does the training check judge a training run fairly, and refuse numbers it cannot trust?"""
from __future__ import annotations

import math
from dataclasses import replace

import pytest

from autograder.checking import training as scoring
from autograder.output.results import CheckResult, PartResult
from autograder.parts.residual_training import ResidualTraining, _validate
from autograder.reference import reference_result
from autograder.sandbox.inside import training

PROFILE = training.QUICK_PROFILE
REFERENCE = {"status": "ok", "val_acc": 0.6, "seconds": 10.0,
             "history": {"train_loss": [1.5, 1.0], "train_acc": [0.4, 0.6],
                         "val_acc": [0.5, 0.6], "epoch_seconds": [5.0, 5.0]}}


def student(status="ok", val_acc=0.6, **extra) -> dict:
    hist = {"train_loss": [1.4, 1.1], "train_acc": [0.4, 0.5], "val_acc": [0.4, val_acc],
            "epoch_seconds": [5.0, 5.0]}
    return {"status": status, "val_acc": val_acc, "history": hist, "message": "", **extra}


def test_does_a_run_at_the_reference_accuracy_pass():
    score, message = scoring.score_training(student(), REFERENCE, PROFILE, 2.0)
    assert score == 2.0 and message.startswith("Passed")


def test_is_the_pass_mark_a_fraction_of_the_reference():
    needed = PROFILE.pass_fraction * REFERENCE["val_acc"]
    assert scoring.score_training(student(val_acc=needed + 1e-6), REFERENCE, PROFILE, 2)[0] == 2
    score, message = scoring.score_training(student(val_acc=needed - 0.01), REFERENCE,
                                             PROFILE, 2)
    assert score == 0 and f"at least {needed:.3f}" in message and "Next step" in message


@pytest.mark.parametrize("status, words", [
    ("nan", "NaN or infinite"), ("oom", "out of GPU memory"), ("error", "failed with")])
def test_does_each_failed_run_get_its_own_message(status, words):
    score, message = scoring.score_training(student(status, message="boom"), REFERENCE,
                                             PROFILE, 2.0)
    assert score == 0 and words in message


def test_does_a_slow_block_hear_that_the_budget_stopped_it():
    _, message = scoring.score_training(student("budget", val_acc=0.2, message="time budget"),
                                         REFERENCE, PROFILE, 2.0)
    assert "time budget" in message and "slower" in message


def test_is_the_time_limit_three_times_the_reference_but_never_below_the_floor():
    assert PROFILE.time_limit(100.0) == 300.0
    assert PROFILE.time_limit(0.1) == PROFILE.time_budget


def test_does_the_cpu_cap_hold_but_always_let_the_reference_finish():
    cpu = training.CPU_PROFILE
    assert cpu.max_seconds == 50.0
    assert cpu.time_limit(12.0) == 36.0     # 3x the reference, under the cap
    assert cpu.time_limit(30.0) == 50.0     # capped: a submission stays under a minute
    assert cpu.time_limit(40.0) == 60.0     # a slow machine: 1.5x the reference still


def test_are_the_profiles_chosen_by_run_and_device():
    assert training.select_profile("quick", "cuda") is training.QUICK_PROFILE
    assert training.select_profile("full", "cuda") is training.GPU_PROFILE
    assert training.select_profile("full", "cpu") is training.CPU_PROFILE
    assert training.GPU_PROFILE.resize == 96 and training.GPU_PROFILE.num_train == 60000


@pytest.mark.parametrize("bad", [
    "not a dict",
    {"status": "passed", "val_acc": 0.9},                              # unknown status
    {**student(), "val_acc": 1.5},                                     # not an accuracy
    {**student(), "val_acc": 0.99},                                    # not the last epoch's
    {**student(), "history": {**student()["history"], "val_acc": [0.1, 0.2, 0.3, 0.99]}},
    {**student(), "history": {**student()["history"], "train_loss": ["1.0", 2]}},
    {**student(), "val_acc": True},                                    # a bool is no number
])
def test_are_malformed_numbers_from_the_worker_refused(bad):
    assert _validate(bad, PROFILE) is None


def test_are_well_formed_numbers_kept():
    got = _validate(student(), PROFILE)
    assert got["val_acc"] == 0.6 and got["history"]["val_acc"] == [0.4, 0.6]


def test_does_the_curve_picture_draw_a_diverged_run():
    png = scoring.curve_png(student("nan", val_acc=0.1) | {
        "history": {"train_loss": [2.0, math.inf], "val_acc": [0.1, 0.1]}}, REFERENCE)
    assert png.startswith(b"\x89PNG")


@pytest.mark.data
@pytest.mark.slow
def test_does_the_reference_block_learn_and_a_detached_one_fall_short():
    """The quick profile must tell a block that trains from one whose main path never
    learns, with the real data, in seconds."""
    import torch.nn.functional as F

    from cnncourse.models import Residual

    class Detached(Residual):
        def forward(self, X):
            Y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(X))))).detach()
            return F.relu(Y + (X if self.conv3 is None else self.conv3(X)))

    ref = training.train_resnet(Residual, PROFILE, time_limit=1e9)
    bad = training.train_resnet(Detached, PROFILE, time_limit=1e9)
    assert ref["status"] == "ok" and ref["val_acc"] > 0.45, ref
    assert scoring.score_training(bad, ref, PROFILE, 2.0)[0] == 0.0, bad["val_acc"]


@pytest.mark.gpu
@pytest.mark.data
def test_does_the_gpu_profile_pass_the_reference_block_on_a_gpu(tmp_path):
    from cnncourse.models import Residual

    ref = reference_result(training.GPU_PROFILE, tmp_path)
    again = training.train_resnet(Residual, training.GPU_PROFILE,
                                  time_limit=training.GPU_PROFILE.time_limit(ref["seconds"]))
    assert scoring.score_training(again, ref, training.GPU_PROFILE, 2.0)[0] == 2.0


def test_does_the_part_declaration_hold_no_per_run_state():
    """The reference run, the profile and the time limit live in what prepare() returns;
    the part object shared by every run (in ASSIGNMENTS) has no instance state at all."""
    part = ResidualTraining()
    assert vars(part) == {} and not hasattr(part, "time_limit")
    assert part.limits.result_bytes == 40 << 20 and part.limits.threads == 2


def test_is_the_time_limit_kept_when_the_run_sets_a_timeout():
    part = ResidualTraining()
    assert part.own_timeout and part.memoize
    assert replace(PROFILE, time_budget=1.0).time_limit(2.0) == 6.0


def test_does_a_diverged_history_travel_as_json_and_come_back_valid():
    import json

    sent = student("nan", val_acc=0.1)
    sent["history"]["train_loss"] = [2.3, None]  # how train_resnet sends an infinite loss
    back = _validate(json.loads(json.dumps(sent, allow_nan=False)), PROFILE)
    assert back is not None and math.isnan(back["history"]["train_loss"][1])


def test_does_a_block_without_forward_hear_about_the_indent_not_a_stub():
    msg = 'NotImplementedError: Module [Residual] is missing the required "forward" function'
    _, message = scoring.score_training(student("error", message=msg), REFERENCE, PROFILE, 2.0)
    assert "no forward method" in message and "not implemented yet" not in message


@pytest.mark.data
def test_are_the_data_links_made_before_the_workers_start(tmp_path, monkeypatch):
    """The sandbox binds the data root and the folders its links point to only if they exist
    when the workers start. On a fresh machine the links were made later (by the reference
    run, in a background thread), so a CI run's workers saw no data and a full-marks
    submission scored 0."""
    from autograder import pipeline
    from autograder.assignments import get_assignment
    from autograder.executors import local
    from autograder.sandbox import launch as sandbox

    from helpers import REPO, real_fashion_mnist

    monkeypatch.setenv("CNN_DATA", str(tmp_path / "fresh-home" / "data"))
    shared = real_fashion_mnist()  # the read-only copy: the fresh root has nothing yet
    seen: dict[str, set[str]] = {}

    class Stop(Exception):
        pass

    def pool_that_notes_what_it_would_bind(*args, **kwargs):
        seen["paths"] = sandbox._data_paths()
        raise Stop

    monkeypatch.setattr(local, "WorkerPool", pool_that_notes_what_it_would_bind)
    monkeypatch.setattr(local, "prepare_assignment", lambda *a, **k: None)  # no reference
    dest = tmp_path / "submitted" / "alice" / "assignment1"
    dest.mkdir(parents=True)
    (dest / "assignment1.ipynb").write_bytes(
        (REPO / "exercises/assignment1/assignment1.ipynb").read_bytes())
    with pytest.raises(Stop):
        pipeline.grade(get_assignment("assignment1"), [tmp_path / "submitted"],
                       tmp_path / "out", pipeline.Options())
    needed = {str(f.resolve().parent) for f in shared.iterdir() if f.name.endswith(".gz")}
    assert needed <= seen["paths"], (needed, seen["paths"])


def _residual_result(failing: tuple[str, ...] = ()) -> PartResult:
    from autograder.parts.residual import Residual

    checks = [CheckResult(s.name, s.name not in failing, s.weight, "m", s.hidden)
              for s in Residual.checks]
    return PartResult.from_checks("residual", 9.0, checks)


def _training_result(score: float = 2.0) -> PartResult:

    return PartResult("residual_training", score, 2.0, "Passed.",
                      (CheckResult("ResNet-18 from your block trains", True, 1.0, "passed"),),
                      seconds=12.5)


def test_does_the_training_part_keep_its_points_when_the_block_checks_pass():
    result = _training_result()
    assert ResidualTraining().gate(result, {"residual": _residual_result()}) is result


@pytest.mark.parametrize("failing", ["gradients reach every parameter",
                                     "forward pass in evaluation mode"])
def test_does_a_failed_block_check_cancel_the_training_points(failing):
    gated = ResidualTraining().gate(_training_result(),
                                    {"residual": _residual_result((failing,))})
    assert gated.score == 0.0 and gated.max_score == 2.0 and gated.seconds == 12.5
    assert f"residual: {failing}" in gated.feedback and "would have scored 2 of 2" in \
        gated.feedback
    assert gated.checks[0].passed is False and len(gated.checks) == 2
    assert gated.checks[0].weight == 1.0 and gated.checks[1].weight == 0.0  # score = weights
    assert gated.feedback.endswith("What this part found on its own: Passed.")


def test_does_a_shape_mistake_alone_leave_the_training_points():
    result = _training_result()
    other = _residual_result(("parameter count",))
    assert ResidualTraining().gate(result, {"residual": other}) is result


def test_does_a_residual_part_that_could_not_run_cancel_the_training_points():
    gated = ResidualTraining().gate(_training_result(),
                                    {"residual": PartResult.zero("residual", 9.0, "no class")})
    assert gated.score == 0.0 and "gradients reach every parameter" in gated.feedback


def test_is_an_assignment_refused_when_a_part_rests_on_one_it_does_not_grade():
    from autograder.assignments import Assignment

    with pytest.raises(ValueError, match="rests on"):
        Assignment("x", "x.ipynb", ("setup",), (ResidualTraining(),))
