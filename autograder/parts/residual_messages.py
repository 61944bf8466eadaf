"""What the ``residual`` part says about one configuration of the student's block: the
typical mistakes its outputs are matched against, and the messages about building it, its
attributes, its output shape and its parameter count (in the current language)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..checking.compare import fmt_shape
from ..checking.report import ErrorInfo, value_info
from ..i18n import N_, _
from .base import not_implemented_message

if TYPE_CHECKING:
    from .residual import Config

__all__ = ["MISTAKES", "at", "attribute_message", "conv3_missing", "construct_message",
           "params_message", "shape_message"]

_LAYERS = ("conv1", "conv2", "conv3", "bn1", "bn2")
MISTAKES = {  # translated when used
    "relu_before_add": N_("you apply ReLU before adding the shortcut; the block adds first "
                          "and then applies ReLU: F.relu(Y + X)."),
    "relu_before_and_after": N_("you apply ReLU both before and after adding the shortcut; "
                                "only the sum goes through ReLU: F.relu(Y + X)."),
    "no_final_relu": N_("the output needs a ReLU after the addition: return F.relu(Y + X)."),
    "no_shortcut": N_("the shortcut is missing: add X (or conv3(X)) to Y before the final "
                      "ReLU."),
}


def construct_message(err: ErrorInfo) -> str:
    """Why the block could not be built, with the older d2l signature recognised."""
    if err.type == "NotImplementedError":
        return not_implemented_message()
    text = _("building it {error}").format(error=err.describe())
    if err.type == "TypeError" and "required positional argument" in err.message:
        text += ". " + _("This looks like the older d2l signature Residual(input_channels, "
                         "num_channels, ...): this assignment uses Residual(num_channels, "
                         "use_1x1conv=False, strides=1) with nn.LazyConv2d and "
                         "nn.LazyBatchNorm2d, which find the input channels on the first "
                         "call")
    return text


def at(c: Config, text: str) -> str:
    """A message about one configuration."""
    return _("{config}: {message}").format(config=c.label, message=text)


def conv3_missing(raw: dict) -> bool:
    attrs = raw.get("attributes") if isinstance(raw.get("attributes"), dict) else {}
    return attrs.get("conv3") in (None, "missing")


def attribute_message(c: Config, raw: dict) -> str | None:
    attrs = raw.get("attributes") if isinstance(raw.get("attributes"), dict) else {}
    missing = [a for a in _LAYERS if attrs.get(a) == "missing"]
    if missing:
        return _("{config} has no attribute {names}.").format(config=c.label,
                                                             names=", ".join(missing))
    if c.use_1x1conv and conv3_missing(raw):
        return _("{config} has conv3 = None: with use_1x1conv=True, create self.conv3 = "
                 "nn.LazyConv2d(num_channels, kernel_size=1, stride=strides).").format(
            config=c.label)
    if not c.use_1x1conv and attrs.get("conv3") is not None:
        return _("{config} should set self.conv3 = None (no 1x1 convolution).").format(
            config=c.label)
    return None


def shape_message(c: Config, raw: dict) -> str | None:
    first = value_info(raw.get("first"), [])
    if first.kind == "tensor" and first.shape == c.expected["eval"].shape:
        return None
    got = (first.type_name or _("an unreadable value")) if first.kind != "tensor" \
        else fmt_shape(first.shape)
    return _("{config} returned {got}; expected {expected}.").format(
        config=c.label, got=got, expected=fmt_shape(c.expected["eval"].shape))


def params_message(c: Config, raw: dict) -> str | None:
    params = raw.get("parameters")
    count = sum(n for _, n in params) if isinstance(params, list) and all(
        isinstance(p, list) and len(p) == 2 and type(p[1]) is int for p in params) else -1
    if count == c.expected["params"]:
        return None
    return _("{config} has {count} parameters; the chapter's block has {expected} ({layers} "
             "with biases, bn1 and bn2).").format(
        config=c.label, count=count, expected=c.expected["params"],
        layers="conv1, conv2, conv3" if c.use_1x1conv else "conv1, conv2")
