"""The grader's own check of a training run: shipped weights, reference forward, measured here.

These use a synthetic validation set (no data files): ``_validation`` is replaced by random
images, so the accuracy a model reaches on them can be computed directly and compared.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from autograder.checking import verification
from autograder.sandbox.inside import training
from cnncourse.models import ResNet18

PROFILE = dataclasses.replace(training.QUICK_PROFILE, name="unit-test", num_val=48,
                              batch_size=16)


@pytest.fixture
def val(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(PROFILE.num_val, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (PROFILE.num_val,), generator=gen)
    monkeypatch.setattr(verification, "_validation", lambda profile, device: (X, y))
    return X, y


def _trained_like(seed: int = 3) -> tuple[torch.nn.Module, dict[str, np.ndarray]]:
    """A reference ResNet-18 with weights drawn from ``seed``, and its shipped arrays."""
    torch.manual_seed(seed)
    model = ResNet18()
    model.initialize(torch.zeros(2, 1, 28, 28))
    with torch.no_grad():  # running statistics that differ from the defaults
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    arrays = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()
              if v.is_floating_point()}
    return model.eval(), arrays


def _accuracy(model, X, y) -> float:
    with torch.no_grad():
        return float((model(X).argmax(dim=1) == y).float().mean())


def test_does_it_measure_what_the_shipped_weights_score(val):
    model, arrays = _trained_like()
    got = verification.verify_weights(arrays, PROFILE)
    assert got.problem == ""
    assert got.accuracy == pytest.approx(_accuracy(model, *val), abs=1e-9)


def test_do_float16_weights_still_reproduce_the_accuracy(val):
    model, arrays = _trained_like()
    half = {k: (v.astype(np.float16) if v.size > 100_000 else v) for k, v in arrays.items()}
    got = verification.verify_weights(half, PROFILE)
    assert abs(got.accuracy - _accuracy(model, *val)) <= verification.TOLERANCE


def test_are_missing_conv_biases_read_as_zero(val):
    model, arrays = _trained_like()
    conv_biases = [k for k in arrays if k.endswith(".bias") and ".conv" in k]
    assert conv_biases
    with torch.no_grad():
        for k in conv_biases:
            model.get_parameter(k).zero_()
    got = verification.verify_weights({k: v for k, v in arrays.items()
                                       if k not in conv_biases}, PROFILE)
    assert got.accuracy == pytest.approx(_accuracy(model, *val), abs=1e-9)


@pytest.mark.parametrize("change, words", [
    (lambda a: {}, "no trained weights came back"),
    (lambda a: {k: v for k, v in a.items() if "bn1.weight" not in k}, "missing"),
    (lambda a: {**a, "net.2.0.extra.weight": np.zeros(3, np.float32)}, "unexpected"),
    (lambda a: {**a, "net.0.0.weight": np.zeros((1, 1, 3, 3), np.float32)}, "has shape"),
    (lambda a: {**a, "net.0.0.weight": np.full(a["net.0.0.weight"].shape, np.nan,
                                                np.float32)}, "NaN"),
])
def test_are_odd_weights_refused_with_a_reason(val, change, words):
    _, arrays = _trained_like()
    assert "net.0.0.weight" in arrays  # the stem convolution, as the cases assume
    got = verification.verify_weights(change(arrays), PROFILE)
    assert got.accuracy is None and words in got.problem, got.problem


def test_does_a_claimed_accuracy_differ_from_the_measured_one(val):
    """Untrained weights measure near chance, far from a claimed 0.99."""
    _, arrays = _trained_like(seed=5)
    got = verification.verify_weights(arrays, PROFILE)
    assert abs(0.99 - got.accuracy) > verification.TOLERANCE


def _trained_and_measured(device: str) -> tuple[float, float]:
    """A short real training run on ``device``; its own and the grader's accuracy."""
    from cnncourse.models import Residual

    profile = dataclasses.replace(training.QUICK_PROFILE, device=device, num_train=512,
                                  num_val=256, epochs=1)
    result, weights = training.train_resnet(Residual, profile, time_limit=1e9,
                                            ship_weights=True)
    assert result["status"] == "ok", result
    arrays = {k: v.numpy() if v.dtype != torch.bfloat16 else v.float().numpy()
              for k, v in weights.items()}
    verification._val_cache.clear()
    return result["val_acc"], verification.verify_weights(arrays, profile).accuracy


@pytest.mark.data
@pytest.mark.slow
def test_does_the_grader_reproduce_a_real_cpu_run():
    reported, measured = _trained_and_measured("cpu")
    assert abs(reported - measured) <= verification.TOLERANCE, (reported, measured)


@pytest.mark.gpu
@pytest.mark.data
def test_does_the_grader_reproduce_a_real_gpu_run():
    """bf16 training and evaluation on the GPU, float16 weights, the grader's own pass."""
    reported, measured = _trained_and_measured("cuda")
    assert abs(reported - measured) <= verification.TOLERANCE, (reported, measured)
