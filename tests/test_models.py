"""Tests for the model registry: shapes, gradients, errors, determinism and parameter counts."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from fedref_ray.config import BUILTIN_MODELS
from fedref_ray.errors import UserError
from fedref_ray.models import MODEL_NAMES, build_model, count_parameters, representation

# (name, input shape, num_classes): the shapes each model is meant for, plus small and odd sizes.
INTENDED = [
    ("logreg", (60,), 2),
    ("logreg", (1, 8, 8), 10),
    ("mlp", (60,), 2),
    ("mlp", (1, 28, 28), 10),
    ("femnist_cnn", (1, 28, 28), 62),
    ("femnist_cnn", (1, 8, 8), 10),
    ("femnist_cnn", (3, 32, 32), 10),
    ("femnist_cnn", (1, 4, 4), 3),
    ("femnist_cnn", (1, 5, 7), 3),
    ("cifar_cnn", (3, 32, 32), 10),
    ("cifar_cnn", (1, 8, 8), 10),
    ("cifar_cnn", (3, 4, 4), 3),
    ("cifar_cnn", (1, 5, 7), 3),
    ("resnet18", (3, 32, 32), 10),
    ("resnet18", (1, 8, 8), 10),
]


def test_model_names_are_the_names_the_config_allows() -> None:
    # Prepare / Execute / Assert
    assert MODEL_NAMES == BUILTIN_MODELS


@pytest.mark.parametrize(("name", "shape", "num_classes"), INTENDED)
def test_model_gives_one_logit_per_class(name: str, shape: tuple[int, ...], num_classes: int) -> None:
    # Prepare
    torch.manual_seed(0)
    model = build_model(name, shape, num_classes).eval()
    x = torch.rand(3, *shape)

    # Execute
    with torch.no_grad():
        logits = model(x)

    # Assert
    assert logits.shape == (3, num_classes)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_backward_reaches_every_parameter(name: str) -> None:
    # Prepare
    shape = (60,) if name in ("logreg", "mlp") else (1, 8, 8)
    torch.manual_seed(0)
    model = build_model(name, shape, 4).train()
    x = torch.rand(4, *shape)
    y = torch.tensor([0, 1, 2, 3])

    # Execute
    loss = F.cross_entropy(model(x), y)
    loss.backward()

    # Assert
    assert torch.isfinite(loss)
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
    assert any(param.grad.abs().sum() > 0 for param in model.parameters())


def test_unknown_name_raises_user_error_listing_allowed_names() -> None:
    # Execute
    with pytest.raises(UserError) as caught:
        build_model("vgg16", (3, 32, 32), 10)

    # Assert
    message = str(caught.value)
    assert "model.name" in message and "vgg16" in message
    assert all(name in message for name in MODEL_NAMES)
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("femnist_cnn", (60,)),
        ("cifar_cnn", (60,)),
        ("resnet18", (60,)),
        ("femnist_cnn", (28, 28)),
        ("cifar_cnn", (3, 3, 32)),
        ("resnet18", (1, 32, 3)),
        ("logreg", ()),
        ("mlp", (0,)),
    ],
)
def test_shape_the_model_cannot_take_raises_user_error(name: str, shape: tuple[int, ...]) -> None:
    # Execute
    with pytest.raises(UserError) as caught:
        build_model(name, shape, 10)

    # Assert
    message = str(caught.value)
    assert "model.name" in message and name in message
    assert str(shape) in message
    assert "\n" not in message


def test_hidden_on_a_model_without_hidden_layer_raises_user_error() -> None:
    # Execute
    with pytest.raises(UserError) as caught:
        build_model("logreg", (60,), 2, hidden=32)

    # Assert
    assert "model.hidden" in str(caught.value) and "logreg" in str(caught.value)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_same_torch_seed_gives_identical_state_and_another_seed_does_not(name: str) -> None:
    # Prepare
    shape = (60,) if name in ("logreg", "mlp") else (3, 8, 8)

    # Execute
    torch.manual_seed(7)
    first = build_model(name, shape, 5).state_dict()
    torch.manual_seed(7)
    second = build_model(name, shape, 5).state_dict()
    torch.manual_seed(8)
    third = build_model(name, shape, 5).state_dict()

    # Assert
    assert list(first) == list(second)
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not all(torch.equal(first[key], third[key]) for key in first)


def test_femnist_cnn_parameter_count_on_28x28() -> None:
    """Conv2d(c_in, c_out, k) has c_in*c_out*k*k + c_out parameters, Linear(a, b) has a*b + b.

    On 1x28x28 with 62 classes, 5x5 'same' convs keep the size and each 2x2 pool halves it:
      conv1  1*32*25 + 32  = 832
      conv2  32*64*25 + 64 = 51,264
      flatten 64*7*7       = 3,136
      fc1    3136*h + h
      fc2    h*62 + 62
    h=2048 (LEAF/Flower): 832 + 51,264 + 6,424,576 + 127,038 = 6,603,710.
    h=1024 (default):     832 + 51,264 + 3,212,288 +  63,550 = 3,327,934.
    """

    # Prepare
    def expected(h: int) -> int:
        return (1 * 32 * 25 + 32) + (32 * 64 * 25 + 64) + (3136 * h + h) + (h * 62 + 62)

    # Execute
    leaf = count_parameters(build_model("femnist_cnn", (1, 28, 28), 62, hidden=2048))
    default = count_parameters(build_model("femnist_cnn", (1, 28, 28), 62))

    # Assert
    assert leaf == expected(2048) == 6_603_710
    assert default == expected(1024) == 3_327_934


def test_hidden_sets_the_mlp_width() -> None:
    """Linear(60,16) + Linear(16,16) + Linear(16,3): 976 + 272 + 51 = 1,299 parameters."""
    # Execute
    model = build_model("mlp", (60,), 3, hidden=16)

    # Assert
    assert count_parameters(model) == (60 * 16 + 16) + (16 * 16 + 16) + (16 * 3 + 3) == 1299


def test_count_parameters_counts_weights_and_biases_of_logreg() -> None:
    # Execute
    model = build_model("logreg", (1, 4, 5), 3)

    # Assert: 20 inputs * 3 classes + 3 biases.
    assert count_parameters(model) == 63


def test_resnet18_is_adapted_to_small_inputs() -> None:
    # Execute
    model = build_model("resnet18", (1, 8, 8), 7)

    # Assert
    assert model.conv1.in_channels == 1
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1) and model.conv1.padding == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    assert model.fc.out_features == 7


def test_importing_models_does_not_import_torchvision() -> None:
    # Execute
    code = "import sys, fedref_ray.models; sys.exit('torchvision' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)

    # Assert
    assert result.returncode == 0, result.stderr


# ----------------------------------------------------------------------------- the representation protocol


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_representation_is_the_input_to_the_last_linear_layer(name: str) -> None:
    """In eval mode, the last linear layer (the Sequential's last entry, ResNet-18's fc) applied to
    model.representation(x) gives model(x); the representation is a (batch, in_features) matrix."""
    # Prepare
    shape = (60,) if name in ("logreg", "mlp") else (1, 8, 8)
    torch.manual_seed(0)
    model = build_model(name, shape, 4).eval()
    last = model.fc if name == "resnet18" else model[-1]
    x = torch.rand(3, *shape)

    # Execute
    with torch.no_grad():
        z = representation(model, x)
        logits = model(x)

    # Assert
    assert isinstance(last, torch.nn.Linear) and z.shape == (3, last.in_features)
    torch.testing.assert_close(last(z), logits, rtol=1e-5, atol=1e-6)


def test_mlp_representation_by_hand() -> None:
    """logreg on (2,): z is the flattened input itself, [[1, 2]]; mlp hidden 1 with weights set by hand:
    Linear(2,1) w = [1, -1], b = 0 -> ReLU -> Linear(1,1) w = 2, b = 1 -> ReLU: x = [3, 1] gives
    relu(2 * relu(3 - 1) + 1) = 5 as the representation (not the logits of the last layer)."""
    # Prepare
    logreg = build_model("logreg", (2,), 3)
    mlp = build_model("mlp", (2,), 3, hidden=1)
    with torch.no_grad():
        mlp[1].weight.copy_(torch.tensor([[1.0, -1.0]]))
        mlp[1].bias.zero_()
        mlp[3].weight.fill_(2.0)
        mlp[3].bias.fill_(1.0)

    # Execute / Assert
    torch.testing.assert_close(logreg.representation(torch.tensor([[1.0, 2.0]])), torch.tensor([[1.0, 2.0]]))
    torch.testing.assert_close(mlp.representation(torch.tensor([[3.0, 1.0]])), torch.tensor([[5.0]]))


def test_the_protocol_keeps_initial_weights_and_state_dict_keys() -> None:
    """mlp is still the plain nn.Sequential it was: same seed, same layers in the same order -> same keys, weights."""
    # Prepare
    torch.manual_seed(3)
    plain = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(60, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
        torch.nn.Linear(16, 3),
    )  # fmt: skip

    # Execute
    torch.manual_seed(3)
    model = build_model("mlp", (60,), 3, hidden=16)

    # Assert
    assert isinstance(model, torch.nn.Sequential)
    assert list(model.state_dict()) == list(plain.state_dict())
    assert all(torch.equal(model.state_dict()[k], plain.state_dict()[k]) for k in plain.state_dict())


def test_a_model_without_representation_is_a_one_line_user_error() -> None:
    # Prepare
    model = torch.nn.Linear(2, 3)

    # Execute
    with pytest.raises(UserError) as caught:
        representation(model, torch.zeros(1, 2), name="mymod:build")

    # Assert
    message = str(caught.value)
    assert "model.name='mymod:build'" in message and "representation(x)" in message and "Linear" in message
    assert "\n" not in message
