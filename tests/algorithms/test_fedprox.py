"""Tests for FedProx's halves: a proximal term anchored at the global model, FedAvg's server.

Client-half setting: torch.nn.Linear(2, 1, bias=False) with weight theta_start = [[1, 2]] (the global model
the round starts from). The proximal term is mu/2 ||theta - theta_start||^2, its gradient mu (theta - theta_start).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedref_ray.algorithms import FedProx, build_algorithm
from fedref_ray.algorithms.fedprox import FedProxParams, ProximalHalf
from fedref_ray.config import AlgorithmConfig, build_config
from fedref_ray.errors import UserError
from tests.algorithms.helpers import aggregate, context, linear

X, Y = torch.ones(1, 2), torch.zeros(1, dtype=torch.long)


def _term(half: ProximalHalf, fm) -> torch.Tensor | None:
    return half.loss_term(fm.model(X), X, Y)


def test_build_algorithm_gives_fedprox_with_its_mu() -> None:
    """METHOD.md: FedProx has mu > 0 and anchor theta_{r-1}; the config's params reach the algorithm."""
    # Prepare / Execute
    algo = build_algorithm(AlgorithmConfig(name="fedprox", params=FedProxParams(mu=0.01)))
    # Assert
    assert isinstance(algo, FedProx)
    assert algo.params == FedProxParams(mu=0.01) and algo.params.mu == 0.01


def test_loss_term_is_half_mu_squared_distance_to_the_start() -> None:
    """theta moved from [1, 2] to [1.5, 0], mu = 0.5: 0.5/2 * (0.5^2 + (-2)^2) = 0.25 * 4.25 = 1.0625."""
    # Prepare
    fm = linear([[1.0, 2.0]])
    half = FedProx(FedProxParams(mu=0.5)).client(context(fm))
    with torch.no_grad():
        fm.model.weight.copy_(torch.tensor([[1.5, 0.0]]))
    # Execute
    term = _term(half, fm)
    # Assert
    assert isinstance(half, ProximalHalf)
    assert float(term.detach()) == pytest.approx(1.0625, rel=1e-6)


def test_loss_term_gradient_is_mu_times_the_distance() -> None:
    """d/dtheta mu/2 ||theta - a||^2 = mu (theta - a) = 0.5 * [0.5, -2] = [0.25, -1]: the term is differentiated."""
    # Prepare
    fm = linear([[1.0, 2.0]])
    half = FedProx(FedProxParams(mu=0.5)).client(context(fm))
    with torch.no_grad():
        fm.model.weight.copy_(torch.tensor([[1.5, 0.0]]))
    # Execute
    _term(half, fm).backward()
    # Assert
    torch.testing.assert_close(fm.model.weight.grad, torch.tensor([[0.25, -1.0]]), rtol=1e-6, atol=1e-7)


def test_loss_term_is_zero_at_the_start() -> None:
    """Before any step theta = theta_start, so the term is exactly 0 (the anchor is the start, not some other model)."""
    # Prepare
    fm = linear([[1.0, 2.0]])
    half = FedProx(FedProxParams(mu=2.0)).client(context(fm))
    # Execute / Assert
    assert float(_term(half, fm).detach()) == 0.0


@pytest.mark.parametrize(("mu", "expected"), [(0.5, 0.5 / 2 * 5.0), (2.0, 2.0 / 2 * 5.0)])
def test_loss_term_follows_mu(mu: float, expected: float) -> None:
    """theta - theta_start = [1, -2] - [0, 0], squared norm 5: the term is mu/2 * 5."""
    # Prepare
    fm = linear([[0.0, 0.0]])
    half = FedProx(FedProxParams(mu=mu)).client(context(fm))
    with torch.no_grad():
        fm.model.weight.copy_(torch.tensor([[1.0, -2.0]]))
    # Execute / Assert
    assert float(_term(half, fm).detach()) == pytest.approx(expected, rel=1e-6)


def test_mu_zero_adds_no_term() -> None:
    # Prepare
    fm = linear([[1.0, 2.0]])
    half = FedProx(FedProxParams(mu=0.0)).client(context(fm))
    with torch.no_grad():
        fm.model.weight.copy_(torch.tensor([[5.0, 5.0]]))
    # Execute / Assert
    assert _term(half, fm) is None


def test_broadcast_sends_nothing_but_the_model() -> None:
    # Prepare
    algo = FedProx(FedProxParams(mu=1.0))
    model = {"w": np.array([1.0, 1.0], np.float32)}
    # Execute / Assert
    assert algo.broadcast(model, algo.init_state(model)) == {}


def test_server_update_is_fedavgs() -> None:
    """theta_r = theta_bar_r, no server step."""
    # Prepare
    algo = FedProx(FedProxParams(mu=1.0))
    model = {"w": np.array([1.0, 1.0], np.float32)}
    agg = {"w": np.array([0.25, -3.5], np.float32)}
    # Execute
    update = algo.server_update(model, algo.init_state(model), aggregate(1, agg, mean_loss=2.0))
    # Assert
    assert not update.step_applied
    np.testing.assert_array_equal(update.model["w"], agg["w"])


@pytest.mark.parametrize("mu", [-0.1, -1e-9, float("nan")])
def test_params_reject_a_negative_or_nan_mu(mu: float) -> None:
    # Prepare / Execute / Assert
    with pytest.raises(ValueError, match="mu="):
        FedProxParams(mu=mu)


def test_config_reports_a_bad_mu_as_a_user_error() -> None:
    """The ValueError from FedProxParams reaches the user as a UserError naming algorithm.mu and the rule."""
    # Prepare / Execute
    with pytest.raises(UserError) as info:
        build_config({"algorithm": {"name": "fedprox", "mu": -1}})
    # Assert
    assert "algorithm.mu=-1.0" in str(info.value) and ">= 0" in str(info.value)


def test_config_rejects_a_key_fedprox_does_not_take() -> None:
    """FedProx takes name, mu, clip_update_norm; algorithm.lam is FedRef's."""
    # Prepare / Execute
    with pytest.raises(UserError) as info:
        build_config({"algorithm": {"name": "fedprox", "lam": 0.1}})
    # Assert
    assert "algorithm.lam" in str(info.value) and "name, mu, clip_update_norm" in str(info.value)
