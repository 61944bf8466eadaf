"""Check a training run's reported accuracy from its trained weights, in the grader.

The worker trains the student's ResNet-18 and reports its accuracy, but that number comes
from the student's own process, where any report can be forged. So the worker also ships
the trained weights, as plain arrays, and the grader loads them into the *reference*
ResNet-18 (``cnncourse.models`` with the reference ``Residual``: the interface fixes the
parameter names) and measures the validation accuracy itself. No student code runs here:
the arrays are numbers whose names, dtypes and shapes are checked before use.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..i18n import _

__all__ = ["Verification", "verify_weights", "TOLERANCE"]

TOLERANCE = 0.03  # |reported - measured| allowed: float16 weights, kernel order, bf16 on GPU
_lock = threading.Lock()
_val_cache: dict = {}  # (profile name, device) -> (X, y) validation tensors


@dataclass(frozen=True)
class Verification:
    """The grader's own accuracy for the shipped weights, or why it could not be measured."""

    accuracy: float | None
    problem: str = ""


def _validation(profile, device: str):
    import torch

    from cnncourse.data import FashionMNIST

    key = (profile.name, device)
    with _lock:
        if key not in _val_cache:
            data = FashionMNIST(batch_size=profile.batch_size, resize=(profile.resize,) * 2,
                                num_train=1, num_val=profile.num_val)
            dtype = torch.bfloat16 if device == "cuda" else torch.float32
            X, y, resized = data.tensors(False, device, dtype)
            if not resized:
                X = data.prepare_batch(X, dtype)
            _val_cache[key] = (X, y)
        return _val_cache[key]


def _state(model, arrays: dict[str, np.ndarray]) -> tuple[dict | None, str]:
    """The reference model's floating-point state filled from ``arrays``, or a problem."""
    import torch

    expected = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    convs = {name for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    state, missing = {}, []
    for name, ref in expected.items():
        if name not in arrays:
            owner = name.rsplit(".", 1)[0]
            if name.endswith(".bias") and owner in convs:  # bias=False is a fair choice
                state[name] = torch.zeros_like(ref)
                continue
            missing.append(name)
            continue
        a = arrays[name]
        if tuple(a.shape) != tuple(ref.shape):
            return None, _("{name} has shape {shape}; the reference block's is "
                           "{expected}").format(name=name, shape=tuple(a.shape),
                                                expected=tuple(ref.shape))
        if not np.isfinite(a).all():
            return None, _("{name} holds NaN or infinite values").format(name=name)
        state[name] = torch.from_numpy(np.array(a, dtype=np.float32))  # a writable copy
    unexpected = sorted(set(arrays) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(_("missing {names}").format(names=", ".join(missing[:3])))
        if unexpected:
            parts.append(_("unexpected {names}").format(names=", ".join(unexpected[:3])))
        return None, _("the trained network's parameters are not the reference block's "
                       "({problems}): the block must hold exactly conv1, conv2, conv3 (or "
                       "None), bn1 and bn2").format(problems="; ".join(parts))
    return state, ""


def verify_weights(arrays: dict[str, np.ndarray], profile) -> Verification:
    """Validation accuracy of the reference ResNet-18 holding ``arrays``, measured here."""
    import torch

    from cnncourse.models import ResNet18
    from cnncourse.trainer import Trainer

    if not arrays:
        return Verification(None, _("no trained weights came back with the training run"))
    device = profile.device  # the run's device, chosen once (cnncourse.config.default_device)
    torch.manual_seed(0)
    model = ResNet18()
    model.initialize(torch.zeros(2, 1, profile.resize, profile.resize))
    state, problem = _state(model, arrays)
    if state is None:
        return Verification(None, problem)
    model.load_state_dict(state, strict=False)  # num_batches_tracked stays as built
    trainer = Trainer(device=device, plot=False, progress=False)  # as the worker evaluates
    model.to(device, memory_format=torch.channels_last)  # as the trainer holds it
    X, y = _validation(profile, device)
    _loss, accuracy = trainer.evaluate(model, X, y, profile.batch_size)
    return Verification(accuracy)
