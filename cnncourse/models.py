"""The course's networks: LeNet, VGG and ResNet-18, plus the Residual block.

Every model is a ``Classifier``: an ``nn.Module`` with a ``net``, its own training settings
(learning rate, momentum, ...) and a ``loss``, so ``Trainer().fit(model, data)`` needs
nothing else. Shapes are written as (batch, channels, height, width).
"""
from __future__ import annotations

import warnings
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Classifier", "LeNet", "modernize", "vgg_block", "VGG", "VGG11_ARCH", "VGG_SMALL_ARCH",
           "Residual", "ResNet18", "RESNET18_ARCH", "init_cnn"]

VGG11_ARCH = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
VGG_SMALL_ARCH = tuple((n, c // 4) for n, c in VGG11_ARCH)  # d2l's narrow VGG-11
RESNET18_ARCH = ((2, 64), (2, 128), (2, 256), (2, 512))


def init_cnn(module: nn.Module) -> None:
    """Xavier-uniform weights for convolutions and dense layers (Glorot & Bengio, 2010)."""
    if isinstance(module, (nn.Conv2d, nn.Linear)) and not isinstance(
            module, nn.modules.lazy.LazyModuleMixin):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class Classifier(nn.Module):
    """An image classifier with its optimizer settings: subclasses set ``self.net``."""

    init_fn = staticmethod(init_cnn)  # None keeps PyTorch's default initialization

    def __init__(self, lr: float = 0.1, momentum: float = 0.0, weight_decay: float = 0.0,
                 label_smoothing: float = 0.0):
        super().__init__()
        self.lr, self.momentum = lr, momentum
        self.weight_decay, self.label_smoothing = weight_decay, label_smoothing
        self.initialized = False

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.net(X)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)

    @staticmethod
    def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (logits.argmax(dim=1) == y).float().mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = list(self.parameters())
        on_cuda = bool(params) and all(p.is_cuda for p in params)
        # fused: one kernel updates every parameter (CUDA only); foreach elsewhere
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum,
                               nesterov=self.momentum > 0, weight_decay=self.weight_decay,
                               fused=True if on_cuda else None)

    def initialize(self, X: torch.Tensor) -> "Classifier":
        """Create lazy layers' weights from an example batch, then draw every weight afresh.

        All weights come from the global RNG at this point (PyTorch's defaults, then
        ``init_fn``), so seeding just before this call fixes the whole model.
        """
        was_training = self.training
        self.eval()  # materialize without touching batch-norm running statistics
        with torch.no_grad():
            self.forward(X)
        self.train(was_training)
        for module in self.modules():
            if hasattr(module, "reset_parameters") and not isinstance(
                    module, nn.modules.lazy.LazyModuleMixin):
                module.reset_parameters()
        if self.init_fn is not None:
            self.apply(self.init_fn)
        self.initialized = True
        return self

    def layer_summary(self, X_shape: Sequence[int]) -> torch.Tensor:
        """Print each top-level layer's output shape for an input of ``X_shape``."""
        X = torch.randn(*X_shape)
        was_training = self.training
        self.eval()
        with torch.no_grad():
            for layer in self.net:
                X = layer(X)
                print(f"{type(layer).__name__:<18} output shape: {tuple(X.shape)}")
        self.train(was_training)
        return X


class LeNet(Classifier):
    """LeNet-5 (LeCun et al., 1998) with sigmoid activations and average pooling."""

    def __init__(self, lr: float = 0.1, num_classes: int = 10, momentum: float = 0.9,
                 **settings):
        super().__init__(lr=lr, momentum=momentum, **settings)
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),   # (B, 6, 28, 28)
            nn.AvgPool2d(kernel_size=2, stride=2),                     # (B, 6, 14, 14)
            nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),             # (B, 16, 10, 10)
            nn.AvgPool2d(kernel_size=2, stride=2),                     # (B, 16, 5, 5)
            nn.Flatten(),                                              # (B, 400)
            nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
            nn.Linear(120, 84), nn.Sigmoid(),
            nn.Linear(84, num_classes))


def modernize(lenet: LeNet) -> LeNet:
    """Swap LeNet's sigmoids for ReLUs and its average for max pooling, in place."""
    for i, layer in enumerate(lenet.net):
        if isinstance(layer, nn.Sigmoid):
            lenet.net[i] = nn.ReLU()
        elif isinstance(layer, nn.AvgPool2d):
            lenet.net[i] = nn.MaxPool2d(kernel_size=2, stride=2)
    return lenet


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """``num_convs`` 3x3 convolutions (padding 1) with ReLU, then 2x2 max pooling.

    The block halves the height and the width.
    """
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels,
                             kernel_size=3, padding=1), nn.ReLU()]
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG(Classifier):
    """VGG (Simonyan & Zisserman, 2014) at 224x224.

    ``arch`` is ((num_convs, channels), ...), one pair per block.
    """

    def __init__(self, arch: Sequence[tuple[int, int]] = VGG_SMALL_ARCH, lr: float = 0.01,
                 num_classes: int = 10, in_channels: int = 1, image_size: int = 224,
                 momentum: float = 0.9, weight_decay: float = 5e-4, **settings):
        super().__init__(lr=lr, momentum=momentum, weight_decay=weight_decay, **settings)
        blocks, c = [], in_channels
        for num_convs, out_channels in arch:
            blocks.append(vgg_block(num_convs, c, out_channels))
            c = out_channels
        side = image_size // 2 ** len(arch)  # each block halves the side: 224 -> 7
        self.net = nn.Sequential(
            *blocks, nn.Flatten(),
            nn.Linear(c * side * side, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, num_classes))


class Residual(nn.Module):
    """A residual block (He et al., 2016): two 3x3 conv-BN layers plus a shortcut.

    The input's channel count is inferred on the first call (lazy layers). With
    ``use_1x1conv`` the shortcut is a strided 1x1 convolution, so it can change the
    number of channels and the resolution to match the main path.
    """

    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1):
        super().__init__()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Lazy modules")
            self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
            self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
            self.conv3 = (nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
                          if use_1x1conv else None)
            self.bn1 = nn.LazyBatchNorm2d()
            self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        shortcut = X if self.conv3 is None else self.conv3(X)
        return F.relu(Y + shortcut)  # add first, then the nonlinearity


class ResNet18(Classifier):
    """ResNet-18 for 1-channel images, built from ``residual`` blocks (a class or a factory)."""

    init_fn = None  # keep PyTorch's default (Kaiming-uniform) initialization

    def __init__(self, lr: float = 0.05, num_classes: int = 10, residual=Residual,
                 arch: Sequence[tuple[int, int]] = RESNET18_ARCH, momentum: float = 0.9,
                 weight_decay: float = 5e-4, **settings):
        super().__init__(lr=lr, momentum=momentum, weight_decay=weight_decay, **settings)
        stem = nn.Sequential(                                       # (B, 1, 96, 96)
            nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),   # (B, 64, 48, 48)
            nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))       # (B, 64, 24, 24)
        stages = []
        for i, (num_residuals, channels) in enumerate(arch):
            blocks = []
            for j in range(num_residuals):
                downsample = j == 0 and i > 0  # each later stage halves h and w
                widen = j == 0 and i == 0 and channels != 64  # the stem gives 64 channels
                blocks.append(residual(channels, use_1x1conv=downsample or widen,
                                       strides=2 if downsample else 1))
            stages.append(nn.Sequential(*blocks))
        self.net = nn.Sequential(
            stem, *stages,
            nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                          nn.Linear(arch[-1][1], num_classes)))
