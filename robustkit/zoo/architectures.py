"""Architectures of the zoo's checkpoints, written from the facts in each source's description.

Every model takes NCHW inputs in [0, 1]; the data-set normalization a checkpoint was trained with
is the first layer (:class:`Normalize`), so attacks work in pixel space.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, with the statistics as (non-trainable) buffers."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Normalized(nn.Module):
    """A classifier preceded by its input normalization; the state dict is the classifier's."""

    def __init__(self, net: nn.Module, mean: Sequence[float] | None, std: Sequence[float] | None):
        super().__init__()
        self.normalize = Normalize(mean, std) if mean is not None else nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


# ---------------------------------------------------------------------------------------------
# CIFAR ResNets of He et al. (2016), option-A shortcuts (akamaster/pytorch_resnet_cifar10 layout)
# ---------------------------------------------------------------------------------------------
class _PadShortcut(nn.Module):
    """Parameter-free shortcut: every second pixel, channels zero-padded equally on both sides."""

    def __init__(self, pad: int):
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class _BasicBlock(nn.Module):
    """conv3×3–BN–ReLU–conv3×3–BN plus the shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = (
            _PadShortcut((cout - cin) // 2) if stride != 1 or cin != cout else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-{20,32,44,56} for 32×32 images: three stages of (depth-2)/6 blocks, 16/32/64 wide."""

    def __init__(self, depth: int, num_classes: int = 10):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        widths, cin, stages = (16, 32, 64), 16, []
        for i, w in enumerate(widths):
            blocks = []
            for j in range(n):
                blocks.append(_BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


# ---------------------------------------------------------------------------------------------
# Small ResNets of alpha-beta-CROWN (resnet2b / resnet4b): no BatchNorm, conv biases
# ---------------------------------------------------------------------------------------------
class _CrownBlock(nn.Module):
    """ReLU(conv2(ReLU(conv1(x))) + shortcut(x)); the shortcut is a 1×1 conv when shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.shortcut(x))


class CrownResNet(nn.Module):
    """resnet2b (one stage) and resnet4b (two stages) of alpha-beta-CROWN's CIFAR models."""

    def __init__(self, stages: Sequence[Sequence[tuple[int, int, int]]], stem: int, flat: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem, 3, 2, 1)
        for i, blocks in enumerate(stages, start=1):
            setattr(self, f"layer{i}", nn.Sequential(*(_CrownBlock(*b) for b in blocks)))
        self.linear1 = nn.Linear(flat, 100)
        self.linear2 = nn.Linear(100, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x))
        # the stages in the order they were added (layer1, layer2: the checkpoints' keys, so
        # no ModuleList); by named_children, not getattr(self, f"layer{i}"), which
        # torch.jit.script cannot compile
        for name, stage in self.named_children():
            if name.startswith("layer"):
                out = stage(out)
        return self.linear2(F.relu(self.linear1(out.flatten(1))))


def resnet4b() -> CrownResNet:
    """Two stages of two blocks (16→32→32 channels), 512 features before the linears."""
    return CrownResNet([[(16, 32, 2), (32, 32, 1)], [(32, 32, 2), (32, 32, 1)]], 16, 512)


def resnet2b() -> CrownResNet:
    """One stage of two blocks (8→16 channels), 1024 features before the linears."""
    return CrownResNet([[(8, 16, 2), (16, 16, 1)]], 8, 1024)


# ---------------------------------------------------------------------------------------------
# Two-convolution networks (the CNN-A / "wide" / ConvSmall family and the MNIST models)
# ---------------------------------------------------------------------------------------------
class TwoConv(nn.Module):
    """conv–ReLU–conv–ReLU–flatten–linear–ReLU–linear with named layers (``conv1`` ...)."""

    def __init__(
        self,
        cin: int,
        c1: int,
        c2: int,
        kernel: int,
        stride: int,
        pad: int,
        flat: int,
        hidden: int,
        classes: int = 10,
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c1, kernel, stride, pad)
        self.conv2 = nn.Conv2d(c1, c2, kernel, stride, pad)
        self.linear1 = nn.Linear(flat, hidden)
        self.linear2 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.linear2(F.relu(self.linear1(out.flatten(1))))


def two_conv_sequential(
    cin: int,
    c1: int,
    c2: int,
    kernel: int,
    stride: int,
    pad: int,
    flat: int,
    hidden: int,
    classes: int = 10,
) -> nn.Sequential:
    """The same network as a Sequential whose parameter keys are 0, 2, 5, 7."""
    return nn.Sequential(
        nn.Conv2d(cin, c1, kernel, stride, pad),
        nn.ReLU(),
        nn.Conv2d(c1, c2, kernel, stride, pad),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(flat, hidden),
        nn.ReLU(),
        nn.Linear(hidden, classes),
    )


class LeNet5(nn.Module):
    """advertorch's MNIST LeNet-5 variant: two 3×3 convs with max-pooling, then two linears."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.linear1 = nn.Linear(7 * 7 * 64, 200)
        self.linear2 = nn.Linear(200, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.max_pool2d(F.relu(self.conv1(x)), 2)
        out = F.max_pool2d(F.relu(self.conv2(out)), 2)
        return self.linear2(F.relu(self.linear1(out.flatten(1))))
