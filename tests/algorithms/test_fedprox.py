"""Tests for FedProx's halves: a proximal term anchored at the global model, FedAvg's server."""

from __future__ import annotations

import numpy as np

from fedref_ray.algorithms import FedProx, build_algorithm
from fedref_ray.algorithms.base import ClientObjective
from fedref_ray.config import AlgorithmConfig


def test_client_objective_is_mu_anchored_at_the_global_model() -> None:
    """METHOD.md: FedProx has mu > 0 and anchor theta_{r-1} ("global")."""
    # Prepare
    algo = build_algorithm(AlgorithmConfig(name="fedprox", mu=0.01))
    # Execute
    objective = algo.client_objective()
    # Assert
    assert isinstance(algo, FedProx)
    assert objective == ClientObjective(mu=0.01, anchor="global")


def test_client_objective_follows_mu() -> None:
    # Prepare / Execute
    objectives = [FedProx(AlgorithmConfig(name="fedprox", mu=mu)).client_objective().mu for mu in (0.0, 0.5, 2.0)]
    # Assert
    assert objectives == [0.0, 0.5, 2.0]


def test_server_update_is_fedavgs() -> None:
    # Prepare
    algo = FedProx(AlgorithmConfig(name="fedprox", mu=1.0))
    state = algo.init_state({"w": np.array([1.0, 1.0], np.float32)})
    aggregate = {"w": np.array([0.25, -3.5], np.float32)}
    # Execute
    update = algo.server_update(state, aggregate, 2.0)
    # Assert
    assert not update.step_applied and update.state.round == 1 and update.state.last_loss == 2.0
    np.testing.assert_array_equal(update.state.params["w"], aggregate["w"])
