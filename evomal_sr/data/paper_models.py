"""The paper's image models, CIFAR-style, sized by the task's ``input_shape``.

``lenet5``, ``allcnnc`` (Dropout), ``vgg11`` / ``vgg16`` (BatchNorm) and ``resnet18``
(BatchNorm) take the flat ``[batch, n_features]`` input of a task, reshape it to
``(C, H, W)`` (a 2-D ``input_shape`` ``(H, W)`` means one channel) and return
``[batch, n_outputs]`` logits. Spatial down-sampling stops once a feature map is
1x1, so the same definitions serve 8x8 digits and 32x32 CIFAR images. The VGGs and
ResNet-18 have millions of parameters and every candidate loss trains its own
copy: they are meant for users with a GPU and their own image data; on a CPU
use them for short checks only.

Examples
--------
>>> import torch
>>> net = build_lenet5(n_features=64, n_outputs=10, input_shape=(8, 8))
>>> net(torch.zeros(2, 64)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from evomal_sr.errors import TaskError

#: Layer widths of VGG-11 and VGG-16 ("M" is a 2x2 max-pool).
VGG_LAYERS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}
#: Dropout rate of AllCNN-C (after each down-sampling block).
ALLCNN_DROPOUT = 0.5


def image_shape(name: str, n_features: int, input_shape: tuple) -> tuple[int, int, int]:
    """``(C, H, W)`` of one example; :class:`TaskError` unless ``input_shape`` is an image shape.

    Examples
    --------
    >>> image_shape("lenet5", 64, (8, 8))
    (1, 8, 8)
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or math.prod(shape) != n_features:
        raise TaskError(
            f"{name} needs image data: input_shape (H, W) or (C, H, W) whose product is the "
            f"{n_features} features, got input_shape {tuple(input_shape)}"
        )
    return shape


class _Reshaped(nn.Module):
    """Flat rows reshaped to ``example_shape`` and run through ``net`` (which ends in logits)."""

    def __init__(self, shape: tuple[int, int, int], net: nn.Module):
        super().__init__()
        self.example_shape = shape
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(-1, *self.example_shape))


def _pool(size: int) -> tuple[nn.Module, int]:
    """A 2x2 max-pool while the map is larger than 1x1 (else identity) and the new size."""
    return (nn.MaxPool2d(2, ceil_mode=True), (size + 1) // 2) if size > 1 else (nn.Identity(), size)


def build_lenet5(*, n_features: int, n_outputs: int, input_shape: tuple = ()) -> nn.Module:
    """LeNet-5: conv(6, 5x5)-pool-conv(16, 5x5)-pool, then 120-84-``n_outputs`` (ReLU).

    Both convolutions are padded ("same"), so small images keep a valid size.
    """
    c, h, w = image_shape("lenet5", n_features, input_shape)
    pool1, size = _pool(min(h, w))
    pool2, _ = _pool(size)
    features = nn.Sequential(
        nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), pool1, nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), pool2, nn.Flatten()
    )
    with torch.no_grad():
        flat = features(torch.zeros(1, c, h, w)).shape[1]
    head = nn.Sequential(nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, n_outputs))
    return _Reshaped((c, h, w), nn.Sequential(features, head))


def build_allcnnc(*, n_features: int, n_outputs: int, input_shape: tuple = ()) -> nn.Module:
    """AllCNN-C: 3x3 convolutions (96, 96, 96/2, 192, 192, 192/2, 192, 1x1 192, 1x1 classes),
    Dropout after each strided block, global average pooling."""
    c, h, w = image_shape("allcnnc", n_features, input_shape)
    layers: list[nn.Module] = []
    width = c
    for out, stride in ((96, 1), (96, 1), (96, 2), (192, 1), (192, 1), (192, 2)):
        layers += [nn.Conv2d(width, out, 3, stride=stride, padding=1), nn.ReLU()]
        if stride == 2:
            layers.append(nn.Dropout(ALLCNN_DROPOUT))
        width = out
    layers += [
        nn.Conv2d(192, 192, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(192, 192, 1),
        nn.ReLU(),
        nn.Conv2d(192, n_outputs, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ]
    return _Reshaped((c, h, w), nn.Sequential(*layers))


def _vgg(name: str, n_features: int, n_outputs: int, input_shape: tuple) -> nn.Module:
    c, h, w = image_shape(name, n_features, input_shape)
    layers: list[nn.Module] = []
    width, size = c, min(h, w)
    for item in VGG_LAYERS[name]:
        if item == "M":
            pool, size = _pool(size)
            layers.append(pool)
        else:
            layers += [nn.Conv2d(width, item, 3, padding=1), nn.BatchNorm2d(item), nn.ReLU()]
            width = item
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, n_outputs)]
    return _Reshaped((c, h, w), nn.Sequential(*layers))


def build_vgg11(*, n_features: int, n_outputs: int, input_shape: tuple = ()) -> nn.Module:
    """VGG-11 with BatchNorm, CIFAR-style (global average pool and one linear layer)."""
    return _vgg("vgg11", n_features, n_outputs, input_shape)


def build_vgg16(*, n_features: int, n_outputs: int, input_shape: tuple = ()) -> nn.Module:
    """VGG-16 with BatchNorm, CIFAR-style (global average pool and one linear layer)."""
    return _vgg("vgg16", n_features, n_outputs, input_shape)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN layers and a (projected) identity shortcut."""

    def __init__(self, width: int, out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.shortcut = nn.Sequential()
        if stride != 1 or width != out:
            self.shortcut = nn.Sequential(nn.Conv2d(width, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def build_resnet18(*, n_features: int, n_outputs: int, input_shape: tuple = ()) -> nn.Module:
    """ResNet-18, CIFAR-style: a 3x3 stem (no max-pool), four stages of two basic blocks
    (64, 128, 256, 512 channels; stride 2 from the second stage while the map is larger
    than 1x1), global average pooling and a linear layer."""
    c, h, w = image_shape("resnet18", n_features, input_shape)
    layers: list[nn.Module] = [nn.Conv2d(c, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    width, size = 64, min(h, w)
    for stage, out in enumerate((64, 128, 256, 512)):
        stride = 2 if stage and size > 1 else 1
        size = (size + 1) // 2 if stride == 2 else size
        layers += [BasicBlock(width, out, stride), BasicBlock(out, out, 1)]
        width = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, n_outputs)]
    return _Reshaped((c, h, w), nn.Sequential(*layers))


#: The paper's models, by name (registered in :data:`evomal_sr.data.models.MODELS`).
PAPER_MODELS = {
    "lenet5": build_lenet5,
    "allcnnc": build_allcnnc,
    "vgg11": build_vgg11,
    "vgg16": build_vgg16,
    "resnet18": build_resnet18,
}
