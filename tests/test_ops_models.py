"""Do cnncourse's from-scratch operations agree with PyTorch, and do its models have the right
shapes?

``torch.nn.functional`` is the oracle for the operations (computed in float64); the shapes of
the networks are the ones published for LeNet, VGG and ResNet-18 in d2l.ai, chapters 7 and 8.
"""
from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnncourse import models, ops

SEEDS = range(12)


def random_case(seed: int, channels_in: int = 1, channels_out: int = 1):
    """A random (input, kernel) pair with the kernel no larger than the input on either side."""
    g = torch.Generator().manual_seed(seed)
    h, w = (int(v) for v in torch.randint(1, 13, (2,), generator=g))
    kh = int(torch.randint(1, h + 1, (1,), generator=g))
    kw = int(torch.randint(1, w + 1, (1,), generator=g))
    X = torch.randn(channels_in, h, w, generator=g, dtype=torch.float64)
    K = torch.randn(channels_out, channels_in, kh, kw, generator=g, dtype=torch.float64)
    return X, K


def conv_oracle(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """PyTorch's cross-correlation of a (c_i, h, w) input with a (c_o, c_i, kh, kw) kernel."""
    return F.conv2d(X[None].double(), K.double())[0]


# --- corr2d -------------------------------------------------------------------------------
def test_does_corr2d_give_the_worked_example():
    X = torch.arange(9.0).reshape(3, 3)
    K = torch.arange(4.0).reshape(2, 2)
    assert torch.equal(ops.corr2d(X, K), torch.tensor([[19.0, 25.0], [37.0, 43.0]]))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_does_corr2d_match_conv2d_on_random_shapes(seed: int, dtype: torch.dtype):
    X, K = random_case(seed)
    Y = ops.corr2d(X[0].to(dtype), K[0, 0].to(dtype))
    expected = conv_oracle(X, K)[0]
    assert Y.shape == expected.shape
    assert Y.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(Y.double(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.float16, torch.bfloat16])
def test_does_corr2d_handle_integer_and_half_precision_inputs(dtype: torch.dtype):
    X = torch.arange(20).reshape(4, 5).to(dtype)
    K = torch.tensor([[1, 0], [0, 2]]).to(dtype)
    Y = ops.corr2d(X, K)
    assert Y.dtype.is_floating_point
    expected = conv_oracle(X[None], K[None, None])[0]
    # bfloat16 keeps 8 bits of mantissa: 3 * 20 = 60 is exact, but be fair to rounding
    torch.testing.assert_close(Y.double(), expected, rtol=1e-2, atol=1e-2)


def test_does_corr2d_take_mixed_dtypes_at_the_wider_precision():
    X = torch.rand(4, 4, dtype=torch.float64)
    K = torch.rand(2, 2, dtype=torch.float32)
    assert ops.corr2d(X, K).dtype == torch.float64


def test_can_a_kernel_be_learned_through_corr2d():
    """Chapter 2 learns a kernel by gradient descent: corr2d's gradient must be conv2d's."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(6, 8, generator=g, dtype=torch.float64)
    K1 = torch.randn(1, 2, generator=g, dtype=torch.float64, requires_grad=True)
    K2 = K1.detach().clone().requires_grad_(True)
    target = torch.randn(6, 7, generator=g, dtype=torch.float64)
    ((ops.corr2d(X, K1) - target) ** 2).sum().backward()
    ((F.conv2d(X[None, None], K2[None, None])[0, 0] - target) ** 2).sum().backward()
    torch.testing.assert_close(K1.grad, K2.grad)


# --- several channels -----------------------------------------------------------------------
def test_does_corr2d_multi_in_give_the_two_channel_example():
    X = torch.tensor([[[0.0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1.0, 2, 3], [4, 5, 6], [7, 8, 9]]])
    K = torch.tensor([[[0.0, 1], [2, 3]], [[1.0, 2], [3, 4]]])
    assert torch.equal(ops.corr2d_multi_in(X, K), torch.tensor([[56.0, 72], [104, 120]]))


@pytest.mark.parametrize("seed", SEEDS)
def test_does_corr2d_multi_in_match_conv2d(seed: int):
    X, K = random_case(seed, channels_in=3)
    torch.testing.assert_close(ops.corr2d_multi_in(X, K[0]), conv_oracle(X, K)[0])


@pytest.mark.parametrize("seed", SEEDS)
def test_does_corr2d_multi_in_out_match_conv2d(seed: int):
    X, K = random_case(seed, channels_in=2, channels_out=3)
    Y = ops.corr2d_multi_in_out(X, K)
    assert Y.shape == (3, X.shape[1] - K.shape[2] + 1, X.shape[2] - K.shape[3] + 1)
    torch.testing.assert_close(Y, conv_oracle(X, K))


@pytest.mark.parametrize("seed", SEEDS)
def test_is_the_1x1_matrix_product_the_same_as_a_1x1_convolution(seed: int):
    g = torch.Generator().manual_seed(seed)
    c_i, c_o, h, w = (int(v) for v in torch.randint(1, 6, (4,), generator=g))
    X = torch.randn(c_i, h, w, generator=g, dtype=torch.float64)
    K = torch.randn(c_o, c_i, 1, 1, generator=g, dtype=torch.float64)
    Y = ops.corr2d_multi_in_out_1x1(X, K)
    torch.testing.assert_close(Y, ops.corr2d_multi_in_out(X, K))
    torch.testing.assert_close(Y, conv_oracle(X, K))


# --- pooling --------------------------------------------------------------------------------
def test_does_pool2d_give_the_worked_examples():
    X = torch.arange(9.0).reshape(3, 3)
    assert torch.equal(ops.pool2d(X, (2, 2)), torch.tensor([[4.0, 5], [7, 8]]))
    assert torch.equal(ops.pool2d(X, (2, 2), "avg"), torch.tensor([[2.0, 3], [5, 6]]))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_does_pool2d_match_pytorch_pooling(seed: int, mode: str):
    X, K = random_case(seed)
    window = tuple(K.shape[-2:])
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    expected = pool(X[None], window, stride=1)[0, 0]
    torch.testing.assert_close(ops.pool2d(X[0], window, mode), expected)


def test_does_pool2d_refuse_an_unknown_mode_by_name():
    with pytest.raises(ValueError, match="'median'"):
        ops.pool2d(torch.zeros(3, 3), (2, 2), mode="median")


# --- output size ------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [5, 8, 13, 28])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_does_output_size_agree_with_conv2d(n: int, k: int, padding: int, stride: int):
    conv = nn.Conv2d(1, 1, kernel_size=k, padding=padding, stride=stride, bias=False)
    with torch.no_grad():
        side = conv(torch.zeros(1, 1, n, n)).shape[-1]
    assert ops.output_size(n, k, padding, stride) == side


# --- models -------------------------------------------------------------------------------
def summary_lines(model: models.Classifier, shape, capsys) -> list[tuple[str, tuple]]:
    """(layer type, output shape) pairs as ``layer_summary`` prints them."""
    model.layer_summary(shape)
    lines = capsys.readouterr().out.strip().splitlines()
    parsed = [re.fullmatch(r"(\w+)\s+output shape: (\(.*\))", line) for line in lines]
    assert all(parsed), f"layer_summary printed lines in an unexpected format: {lines}"
    return [(m.group(1), eval(m.group(2))) for m in parsed]


def test_does_lenet_produce_the_published_layer_shapes(capsys):
    assert summary_lines(models.LeNet(), (1, 1, 28, 28), capsys) == [
        ("Conv2d", (1, 6, 28, 28)), ("Sigmoid", (1, 6, 28, 28)), ("AvgPool2d", (1, 6, 14, 14)),
        ("Conv2d", (1, 16, 10, 10)), ("Sigmoid", (1, 16, 10, 10)),
        ("AvgPool2d", (1, 16, 5, 5)), ("Flatten", (1, 400)), ("Linear", (1, 120)),
        ("Sigmoid", (1, 120)), ("Linear", (1, 84)), ("Sigmoid", (1, 84)), ("Linear", (1, 10))]


def test_does_the_small_vgg_map_224_pixels_to_ten_classes(capsys):
    lines = summary_lines(models.VGG(), (1, 1, 224, 224), capsys)
    blocks = [shape for name, shape in lines if name == "Sequential"]
    assert blocks == [(1, 16, 112, 112), (1, 32, 56, 56), (1, 64, 28, 28), (1, 128, 14, 14),
                      (1, 128, 7, 7)]
    assert lines[len(blocks)] == ("Flatten", (1, 6272))
    assert lines[-1] == ("Linear", (1, 10))


def test_does_vgg11_keep_the_published_channel_counts(capsys):
    # VGG-11's channels at a small input: the classifier's width follows the image size
    lines = summary_lines(models.VGG(models.VGG11_ARCH, image_size=32), (1, 1, 32, 32), capsys)
    blocks = [shape for name, shape in lines if name == "Sequential"]
    assert blocks == [(1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4), (1, 512, 2, 2),
                      (1, 512, 1, 1)]
    assert lines[-1] == ("Linear", (1, 10))


def test_does_vgg_block_halve_the_side_after_its_convolutions():
    block = models.vgg_block(2, 3, 8)
    assert [type(m).__name__ for m in block] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d"]
    assert block(torch.zeros(2, 3, 16, 16)).shape == (2, 8, 8, 8)


def test_does_resnet18_produce_the_published_stage_shapes(capsys):
    assert summary_lines(models.ResNet18(), (1, 1, 96, 96), capsys) == [
        ("Sequential", (1, 64, 24, 24)), ("Sequential", (1, 64, 24, 24)),
        ("Sequential", (1, 128, 12, 12)), ("Sequential", (1, 256, 6, 6)),
        ("Sequential", (1, 512, 3, 3)), ("Sequential", (1, 10))]


def test_does_resnet18_build_its_blocks_from_the_given_residual():
    """The autograder builds ResNet-18 from a student's block through this argument."""
    calls = []

    def residual(channels, use_1x1conv=False, strides=1):
        calls.append((channels, use_1x1conv, strides))
        return models.Residual(channels, use_1x1conv=use_1x1conv, strides=strides)

    model = models.ResNet18(residual=residual)
    assert calls == [(64, False, 1), (64, False, 1), (128, True, 2), (128, False, 1),
                     (256, True, 2), (256, False, 1), (512, True, 2), (512, False, 1)]
    model.initialize(torch.zeros(2, 1, 96, 96))
    assert model(torch.zeros(2, 1, 96, 96)).shape == (2, 10)


@pytest.mark.parametrize("kwargs, output", [
    ({"num_channels": 3}, (4, 3, 6, 6)),
    ({"num_channels": 6, "use_1x1conv": True, "strides": 2}, (4, 6, 3, 3)),
])
def test_does_residual_give_the_published_shapes(kwargs: dict, output: tuple):
    block = models.Residual(**kwargs)
    assert block(torch.randn(4, 3, 6, 6)).shape == output
    assert (block.conv3 is None) != kwargs.get("use_1x1conv", False)


def test_does_residual_add_the_shortcut_before_the_relu():
    block = models.Residual(3).eval()  # fresh running statistics: batch norm maps 0 to 0
    X = torch.randn(4, 3, 6, 6)
    block(X)  # materialize the lazy layers
    with torch.no_grad():
        for conv in (block.conv1, block.conv2):
            conv.weight.zero_()
            conv.bias.zero_()
    # with a silent main path the block is relu(0 + X); relu before the sum would differ
    torch.testing.assert_close(block(X), F.relu(X))


def test_does_initialize_give_xavier_weights_and_zero_biases():
    model = models.LeNet()
    model.initialize(torch.zeros(2, 1, 28, 28))
    linear = model.net[-1]
    assert model.initialized and torch.count_nonzero(linear.bias) == 0
    bound = (6 / (linear.in_features + linear.out_features)) ** 0.5
    assert linear.weight.abs().max() <= bound


def test_does_the_classifier_score_logits_as_documented():
    model = models.LeNet(lr=0.05)
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    y = torch.tensor([0, 2])
    assert model.accuracy(logits, y).item() == 0.5
    torch.testing.assert_close(model.loss(logits, y), F.cross_entropy(logits, y))
    optimizer = model.configure_optimizers()
    assert optimizer.param_groups[0]["lr"] == 0.05


# --- agreement with d2l ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def d2l():
    return pytest.importorskip("d2l.torch", reason="d2l is not installed")


@pytest.mark.parametrize("seed", SEEDS)
def test_does_d2l_corr2d_agree_with_ours(d2l, seed: int):
    X, K = random_case(seed)
    X, K = X[0].float(), K[0, 0].float()
    torch.testing.assert_close(ops.corr2d(X, K), d2l.corr2d(X, K), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs", [{"num_channels": 3},
                                    {"num_channels": 6, "use_1x1conv": True, "strides": 2}])
def test_does_d2l_residual_agree_with_ours_given_the_same_weights(d2l, kwargs: dict):
    torch.manual_seed(0)
    X = torch.randn(4, 3, 6, 6)
    ours, theirs = models.Residual(**kwargs), d2l.Residual(**kwargs)
    ours(X), theirs(X)  # materialize the lazy layers
    theirs.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ours(X), theirs(X))  # training mode: batch statistics
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(X), theirs(X))  # evaluation mode: running statistics
