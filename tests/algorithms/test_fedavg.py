"""Tests for FedAvg's halves: plain local SGD (no loss term, no correction, no uploads, no state), the server
takes the aggregate as it is; and the registry and config around the algorithm interface."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedref_ray.algorithms import (
    BUILTIN_ALGORITHMS,
    ClientHalf,
    FedAvg,
    FedOpt,
    FedProx,
    FedRef,
    NoParams,
    NoState,
    Scaffold,
    build_algorithm,
)
from fedref_ray.algorithms.fedprox import FedProxParams
from fedref_ray.config import AlgorithmConfig, build_config
from fedref_ray.errors import UserError
from tests.algorithms.helpers import aggregate, context, linear

# ----------------------------------------------------------------------------- client half


def test_client_half_has_no_loss_term() -> None:
    """FedAvg's row in METHOD.md: mu = 0, anchor none, so loss_term adds nothing (None)."""
    # Prepare
    fm = linear([[1.0, 2.0]])
    half = FedAvg().client(context(fm))
    # Execute
    term = half.loss_term(fm.model(torch.ones(1, 2)), torch.ones(1, 2), torch.zeros(1, dtype=torch.long))
    # Assert
    assert type(half) is ClientHalf
    assert term is None


def test_client_half_leaves_the_gradients_and_uploads_nothing() -> None:
    """after_backward keeps p.grad as it is; finish uploads no extra tensor and keeps no client state."""
    # Prepare
    fm = linear([[1.0, 2.0]])
    half = FedAvg().client(context(fm))
    fm.model.weight.grad = torch.tensor([[0.5, -3.0]])
    # Execute
    half.after_backward()
    result = half.finish(fm.flat, 3)
    # Assert
    torch.testing.assert_close(fm.model.weight.grad, torch.tensor([[0.5, -3.0]]), rtol=0, atol=0)
    assert result.tensors == {} and result.scalars == {} and result.state is None


def test_broadcast_sends_nothing_but_the_model() -> None:
    # Prepare
    algo = FedAvg()
    model = {"w": np.array([1.0, 2.0], np.float32)}
    # Execute / Assert
    assert algo.broadcast(model, algo.init_state(model)) == {}


# ----------------------------------------------------------------------------- server half


def test_server_update_takes_the_aggregate_and_keeps_no_state() -> None:
    """theta_r = theta_bar_r bit for bit, two rounds in a row; the state stays NoState; no step reported."""
    # Prepare
    algo = FedAvg()
    start = {"w": np.array([1.0, 2.0], np.float32), "b": np.array([[0.5]], np.float32)}
    agg = {"w": np.array([3.0, -4.0], np.float32), "b": np.array([[0.25]], np.float32)}
    state = algo.init_state(start)
    # Execute
    first = algo.server_update(start, state, aggregate(1, agg, mean_loss=0.42))
    second = algo.server_update(first.model, first.state, aggregate(2, start, mean_loss=0.5))
    # Assert
    assert state == NoState() and first.state == NoState() and second.state == NoState()
    assert not first.step_applied and not second.step_applied
    for k in agg:
        np.testing.assert_array_equal(first.model[k], agg[k])
        np.testing.assert_array_equal(second.model[k], start[k])


# ----------------------------------------------------------------------------- registry and config


@pytest.mark.parametrize(
    ("name", "cls"),
    [("fedavg", FedAvg), ("fedprox", FedProx), ("fedopt", FedOpt), ("fedref", FedRef), ("scaffold", Scaffold)],
)
def test_build_algorithm_maps_every_config_name(name: str, cls: type) -> None:
    """Each built-in name builds its class, with its own default Params."""
    # Prepare / Execute
    algo = build_algorithm(AlgorithmConfig(name=name))
    # Assert
    assert type(algo) is cls and algo.name == name
    assert type(algo.params) is cls.Params and algo.params == cls.Params()
    assert set(BUILTIN_ALGORITHMS) == {"fedavg", "fedprox", "fedopt", "fedref", "scaffold", "feddyn", "fedcurv",
                                       "fedntd", "moon", "fedavgm", "fedadagrad"}  # fmt: skip


def test_fedavg_takes_no_params() -> None:
    """FedAvg's Params is NoParams; its default AlgorithmConfig carries NoParams()."""
    # Prepare / Execute
    cfg = AlgorithmConfig(name="fedavg")
    # Assert
    assert FedAvg.Params is NoParams and cfg.params == NoParams()
    assert cfg.to_dict() == {"name": "fedavg", "clip_update_norm": None, "max_update_ratio": 1000.0}


def test_config_rejects_mu_for_fedavg_naming_the_key_and_fedavgs_keys() -> None:
    """algorithm.mu belongs to FedProx/FedRef: for FedAvg it is a UserError listing what FedAvg takes."""
    # Prepare / Execute
    with pytest.raises(UserError) as info:
        build_config({"algorithm": {"name": "fedavg", "mu": 0.5}})
    # Assert
    message = str(info.value)
    assert "algorithm.mu" in message
    assert "algorithm.name=fedavg takes name, clip_update_norm" in message


def test_algorithm_config_rejects_params_of_another_algorithm() -> None:
    """AlgorithmConfig(name='fedavg', params=FedProxParams(...)) is a UserError naming both types."""
    # Prepare / Execute
    with pytest.raises(UserError) as info:
        AlgorithmConfig(name="fedavg", params=FedProxParams(mu=0.7))
    # Assert
    assert "FedProxParams" in str(info.value) and "NoParams" in str(info.value)
