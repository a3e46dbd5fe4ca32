"""Registry of the networks a config can name, built for a given input shape and class count.

Construction draws from torch's global RNG only, so the caller's `torch.manual_seed`
fixes the initial model; nothing here seeds.

Representation protocol: a model may define `representation(x) -> Tensor`, the batch's features as
they enter its last linear layer (so `forward(x)` is that layer applied to `representation(x)`). MOON
contrasts these features; every built-in model has the method, and `representation(model, x)` says
in one line when a user's model lacks it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from torch import nn

from fedref_ray.config import BUILTIN_MODELS
from fedref_ray.errors import UserError
from fedref_ray.imports import first_line, is_import_path, load_object

MLP_HIDDEN = 200
# The Fed-Ref repository's FEMNIST_CNN (Network/CNN.py) uses fc1 width 1024.
FEMNIST_HIDDEN = 1024
# The Fed-Ref repository's CINIC10_LightCNN (Network/CNN.py) uses fc1 width 256.
CIFAR_HIDDEN = 256
MIN_IMAGE_SIDE = 4

if TYPE_CHECKING:
    import torch

REPRESENTATION_METHOD = "representation"

_IMAGE_MODELS = ("femnist_cnn", "cifar_cnn", "resnet18")
_MODELS_WITH_HIDDEN = ("mlp", "femnist_cnn", "cifar_cnn")


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters (weights and biases; buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


class RepresentationSequential(nn.Sequential):
    """nn.Sequential whose last layer is the linear output layer; `representation` runs all layers but that one.

    A plain subclass: the same layers in the same order give the same initial weights and state_dict keys.
    """

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """The input to the last (linear) layer for the batch `x`."""
        for layer in list(self)[:-1]:
            x = layer(x)
        return x


def has_representation(model: nn.Module) -> bool:
    """Whether `model` follows the representation protocol (a callable `representation(x)`)."""
    return callable(getattr(model, REPRESENTATION_METHOD, None))


def check_representation(model: nn.Module, name: str | None = None, needed_by: str | None = None) -> None:
    """A one-line UserError naming `model.name` (its value `name` where known) and the missing method when
    `model` has no `representation(x)`; `needed_by` names what needs it (e.g. "algorithm.name='moon'")."""
    if has_representation(model):
        return
    subject = f"model.name={name!r}" if name is not None else "model.name"
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    needs = f", which {needed_by} needs" if needed_by else ""
    raise UserError(
        f"{subject}: the model ({kind}) has no method {REPRESENTATION_METHOD}(x) returning the input to its "
        f"last linear layer{needs}; add one (README, 'Extending fedref-ray')"
    )


def representation(model: nn.Module, x: torch.Tensor, name: str | None = None) -> torch.Tensor:
    """`model.representation(x)`, the input to the model's last linear layer for the batch `x`; a one-line
    UserError naming `model.name` (`name`, where known) and the method when the model lacks it."""
    check_representation(model, name)
    return getattr(model, REPRESENTATION_METHOD)(x)


def build_model(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    hidden: int | None = None,
) -> nn.Module:
    """Build the model `name` for samples of `input_shape` ((C, H, W) or (F,)) giving `num_classes` logits.

    `name` may be an import path "package.module:function" of the user's own builder, called as
    function(input_shape, num_classes). Raises UserError naming `model.name` for an unknown name,
    a builder that does not return a torch Module, or an input shape the model cannot take.
    """
    if is_import_path(name):
        return _user_model(name, tuple(int(d) for d in input_shape), num_classes)
    if name not in _BUILDERS:
        raise UserError(f"model.name={name!r} is not allowed: use one of {', '.join(MODEL_NAMES)}")
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise UserError(f"model.name={name!r}: input shape {shape} must be non-empty with sizes >= 1")
    if name in _IMAGE_MODELS and (len(shape) != 3 or min(shape[1:]) < MIN_IMAGE_SIDE):
        raise UserError(
            f"model.name={name!r} needs image input (C, H, W) with H, W >= {MIN_IMAGE_SIDE}, "
            f"got input shape {shape}; use logreg or mlp for tabular data"
        )
    if hidden is not None and name not in _MODELS_WITH_HIDDEN:
        raise UserError(
            f"model.hidden={hidden} is not used by model.name={name!r}: leave it null "
            f"(only {', '.join(_MODELS_WITH_HIDDEN)} have a hidden width)"
        )
    if hidden is not None and hidden < 1:
        raise UserError(f"model.hidden={hidden} is not allowed: null or an integer >= 1")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    return _BUILDERS[name](shape, num_classes, hidden)


def _logreg(shape: tuple[int, ...], num_classes: int, hidden: int | None) -> nn.Module:
    """Multinomial logistic regression: flatten, then one linear layer."""
    return RepresentationSequential(nn.Flatten(), nn.Linear(math.prod(shape), num_classes))


def _mlp(shape: tuple[int, ...], num_classes: int, hidden: int | None) -> nn.Module:
    """Two ReLU hidden layers of width `hidden` (default 200, the MNIST 2NN of McMahan et al., 2017)."""
    width = hidden or MLP_HIDDEN
    return RepresentationSequential(
        nn.Flatten(),
        nn.Linear(math.prod(shape), width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, num_classes),
    )


def _femnist_cnn(shape: tuple[int, ...], num_classes: int, hidden: int | None) -> nn.Module:
    """The LEAF/Flower FEMNIST CNN: two 5x5 'same' conv blocks (32, 64) with 2x2 pooling, fc `hidden`, output.

    hidden=2048 reproduces the LEAF/Flower model (6,603,710 parameters on 1x28x28, 62 classes).
    The default 1024 is the fc width of the Fed-Ref repository's FEMNIST_CNN, which otherwise
    differs: its convs are unpadded (28 -> 24 -> 12 -> 8 -> 4), so it cannot take 8x8 inputs.
    """
    channels, height, width = shape
    flat = 64 * (height // 4) * (width // 4)
    size = hidden or FEMNIST_HIDDEN
    return RepresentationSequential(
        nn.Conv2d(channels, 32, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, size),
        nn.ReLU(),
        nn.Linear(size, num_classes),
    )


def _cifar_cnn(shape: tuple[int, ...], num_classes: int, hidden: int | None) -> nn.Module:
    """A light CNN for 32x32 colour images: three 3x3 conv blocks (32, 64, 128) with 2x2 pooling, fc, output.

    On 3x32x32 it is the Fed-Ref repository's CINIC10_LightCNN (fc width 256); pooling rounds
    up so any side >= 4 still leaves a 1x1 map after three poolings.
    """
    channels, height, width = shape
    layers: list[nn.Module] = []
    in_channels = channels
    for out_channels in (32, 64, 128):
        layers += [
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
        ]
        in_channels = out_channels
        height, width = math.ceil(height / 2), math.ceil(width / 2)
    size = hidden or CIFAR_HIDDEN
    layers += [
        nn.Flatten(),
        nn.Linear(in_channels * height * width, size),
        nn.ReLU(),
        nn.Linear(size, num_classes),
    ]
    return RepresentationSequential(*layers)


def _user_model(name: str, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    builder = load_object("model.name", name)
    try:
        model = builder(shape, num_classes)
    except Exception as exc:  # noqa: BLE001 - the user's builder failed on this data: say so in one line
        raise UserError(
            f"model.name={name!r} failed for input shape {shape} and {num_classes} classes: {first_line(exc)}"
        ) from None
    if not isinstance(model, nn.Module):
        raise UserError(f"model.name={name!r} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _resnet18(shape: tuple[int, ...], num_classes: int, hidden: int | None) -> nn.Module:
    """torchvision's ResNet-18 with a 3x3 stride-1 stem and no max-pool, the usual CIFAR-size adaptation.

    It has BatchNorm, so its state_dict also holds running statistics and an integer counter.
    """
    model = _resnet18_class()(num_classes=num_classes)
    model.conv1 = nn.Conv2d(shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
    # Same initialisation torchvision gives its own convolutions.
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model


@cache
def _resnet18_class() -> type[nn.Module]:
    """torchvision's ResNet (BasicBlock, [2, 2, 2, 2]) as torchvision's resnet18 builds it, plus `representation`.

    Made on first use, so importing this module does not import torchvision; it is reachable as
    `fedref_ray.models.ResNet18` (a module __getattr__), so pickle finds it by name.
    """
    from torchvision.models.resnet import BasicBlock, ResNet  # lazy: only this model needs torchvision

    class ResNet18(ResNet):
        """torchvision ResNet-18 whose `representation` is the pooled, flattened input to `fc`."""

        def __init__(self, num_classes: int) -> None:
            super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)

        def representation(self, x: torch.Tensor) -> torch.Tensor:
            """The input to `fc`: every layer of torchvision's forward but the last."""
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.avgpool(x).flatten(1)

    ResNet18.__module__, ResNet18.__qualname__ = __name__, "ResNet18"
    return ResNet18


def __getattr__(name: str) -> Any:
    if name == "ResNet18":
        return _resnet18_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_BUILDERS: dict[str, Callable[[tuple[int, ...], int, int | None], nn.Module]] = {
    "logreg": _logreg,
    "mlp": _mlp,
    "femnist_cnn": _femnist_cnn,
    "cifar_cnn": _cifar_cnn,
    "resnet18": _resnet18,
}

# The names a config may give as model.name, in registry order (config.py lists them without importing torch).
MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)
assert MODEL_NAMES == BUILTIN_MODELS, "config.BUILTIN_MODELS must list the model registry"
