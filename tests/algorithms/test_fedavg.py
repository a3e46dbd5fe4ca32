"""Tests for FedAvg's halves: no proximal term, and the server takes the aggregate as it is."""

from __future__ import annotations

import numpy as np
import pytest

from fedref_ray.algorithms import ALGORITHMS, FedAvg, FedOpt, FedProx, FedRef, build_algorithm
from fedref_ray.algorithms.base import ClientObjective
from fedref_ray.config import AlgorithmConfig


def test_client_objective_has_no_proximal_term_even_if_mu_is_set() -> None:
    """FedAvg's row in METHOD.md: mu = 0, anchor none (algorithm.mu belongs to FedProx/FedRef)."""
    # Prepare
    algo = build_algorithm(AlgorithmConfig(name="fedavg", mu=0.7))
    # Execute
    objective = algo.client_objective()
    # Assert
    assert objective == ClientObjective(mu=0.0, anchor="none")


def test_server_update_takes_the_aggregate_and_counts_the_round() -> None:
    # Prepare
    algo = FedAvg(AlgorithmConfig())
    start = {"w": np.array([1.0, 2.0], np.float32), "b": np.array([[0.5]], np.float32)}
    aggregate = {"w": np.array([3.0, -4.0], np.float32), "b": np.array([[0.25]], np.float32)}
    state = algo.init_state(start)
    # Execute
    update = algo.server_update(state, aggregate, 0.42)
    second = algo.server_update(update.state, start, 0.5)
    # Assert
    assert state.round == 0 and state.last_loss is None
    assert update.state.round == 1 and second.state.round == 2
    assert update.state.last_loss == 0.42 and second.state.last_loss == 0.5
    assert not update.step_applied and not second.step_applied
    for k in aggregate:
        np.testing.assert_array_equal(update.state.params[k], aggregate[k])
        np.testing.assert_array_equal(second.state.params[k], start[k])


@pytest.mark.parametrize(
    ("name", "cls"), [("fedavg", FedAvg), ("fedprox", FedProx), ("fedopt", FedOpt), ("fedref", FedRef)]
)
def test_build_algorithm_maps_every_config_name(name: str, cls: type) -> None:
    # Prepare / Execute
    algo = build_algorithm(AlgorithmConfig(name=name))
    # Assert
    assert type(algo) is cls and algo.name == name
    assert set(ALGORITHMS) == {"fedavg", "fedprox", "fedopt", "fedref"}
