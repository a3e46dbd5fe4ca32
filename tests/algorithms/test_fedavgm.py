"""Tests for FedAvgM's server step (Hsu, Qi and Brown 2019): v <- beta v + d, x <- x + server_lr v, d = A - x.

Shared setting for the momentum tests: x_0 = [1, 2], beta = 0.5, server_lr = 0.5, v_0 = [0, 0]; every
number below is a short binary fraction, so float32 holds it exactly and the checks are exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedref_ray.algorithms import BUILTIN_ALGORITHMS, ClientHalf, FedAvg, FedAvgM, build_algorithm
from fedref_ray.algorithms.fedavgm import FedAvgMParams, FedAvgMState
from fedref_ray.config import AlgorithmConfig, build_config
from fedref_ray.errors import UserError
from fedref_ray.state_codec import decode_state, encode_state
from tests.algorithms.helpers import aggregate, context, linear, p32


def _fedavgm(beta: float = 0.5, server_lr: float = 0.5) -> FedAvgM:
    algo = build_algorithm(AlgorithmConfig(name="fedavgm", params=FedAvgMParams(beta=beta, server_lr=server_lr)))
    assert isinstance(algo, FedAvgM)
    return algo


def test_three_rounds_of_momentum_by_hand() -> None:
    """Round 1, A_1 = [3, 1]: d_1 = [2, -1], v_1 = 0.5 [0, 0] + d_1 = [2, -1], x_1 = [1, 2] + 0.5 [2, -1] = [2, 1.5].
    Round 2, A_2 = [2, 3.5]: d_2 = [0, 2], v_2 = 0.5 [2, -1] + [0, 2] = [1, 1.5],
    x_2 = [2, 1.5] + 0.5 [1, 1.5] = [2.5, 2.25] (FedAvg would give A_2 = [2, 3.5]).
    Round 3, A_3 = x_2 = [2.5, 2.25]: d_3 = [0, 0], v_3 = 0.5 [1, 1.5] = [0.5, 0.75],
    x_3 = [2.5, 2.25] + 0.5 [0.5, 0.75] = [2.75, 2.625]: the momentum keeps moving the model.
    A flipped pseudo-gradient would give x_1 = [0, 2.5]; x - server_lr v would give x_1 = [0, 2.5] too."""
    # Prepare
    algo = _fedavgm()
    x0 = p32(1.0, 2.0)
    state = algo.init_state(x0)
    # Execute
    first = algo.server_update(x0, state, aggregate(1, p32(3.0, 1.0)))
    second = algo.server_update(first.model, first.state, aggregate(2, p32(2.0, 3.5)))
    third = algo.server_update(second.model, second.state, aggregate(3, p32(2.5, 2.25)))
    # Assert
    np.testing.assert_array_equal(first.state.velocity["w"], [2.0, -1.0])
    np.testing.assert_array_equal(first.model["w"], [2.0, 1.5])
    np.testing.assert_array_equal(second.state.velocity["w"], [1.0, 1.5])
    np.testing.assert_array_equal(second.model["w"], [2.5, 2.25])
    np.testing.assert_array_equal(third.state.velocity["w"], [0.5, 0.75])
    np.testing.assert_array_equal(third.model["w"], [2.75, 2.625])
    assert first.step_applied and second.step_applied and third.step_applied
    assert third.model["w"].dtype == np.float32 and third.state.velocity["w"].dtype == np.float64


def test_beta_zero_and_server_lr_one_is_fedavg_exactly() -> None:
    """beta = 0, server_lr = 1: v = d and x + d = A, so each round's model is the aggregate bit for bit, as
    FedAvg's; no non-averaging step is reported. Aggregates with many significant bits: [0.1, -0.3], [1/3, 2/7]."""
    # Prepare
    algo, fedavg = _fedavgm(beta=0.0, server_lr=1.0), FedAvg()
    x0 = p32(1.0, 2.0)
    a1, a2 = aggregate(1, p32(0.1, -0.3)), aggregate(2, p32(1 / 3, 2 / 7))
    # Execute
    first = algo.server_update(x0, algo.init_state(x0), a1)
    second = algo.server_update(first.model, first.state, a2)
    plain = fedavg.server_update(fedavg.server_update(x0, fedavg.init_state(x0), a1).model, None, a2)
    # Assert
    np.testing.assert_array_equal(first.model["w"], a1.model["w"])
    np.testing.assert_array_equal(second.model["w"], plain.model["w"])
    assert second.model["w"].dtype == np.float32
    assert not first.step_applied and not second.step_applied


def test_server_lr_alone_scales_the_averaged_update() -> None:
    """beta = 0, server_lr = 2: x_1 = [1, 2] + 2 ([3, 1] - [1, 2]) = [5, 0]; a step is reported."""
    # Prepare
    algo = _fedavgm(beta=0.0, server_lr=2.0)
    # Execute
    update = algo.server_update(p32(1.0, 2.0), algo.init_state(p32(1.0, 2.0)), aggregate(1, p32(3.0, 1.0)))
    # Assert
    np.testing.assert_array_equal(update.model["w"], [5.0, 0.0])
    assert update.step_applied


def test_init_state_is_zero_velocity_shaped_like_the_model() -> None:
    """v_0 = 0 for every key, float64, one array per parameter."""
    # Prepare / Execute
    state = _fedavgm().init_state({"w": np.ones(2, np.float32), "b": np.ones((2, 3), np.float32)})
    # Assert
    assert isinstance(state, FedAvgMState)
    np.testing.assert_array_equal(state.velocity["w"], [0.0, 0.0])
    assert state.velocity["b"].shape == (2, 3) and state.velocity["b"].dtype == np.float64


def test_server_update_does_not_mutate_the_old_state_or_model() -> None:
    """x_0 and v_0 are unchanged after a step (checkpoints keep the old state)."""
    # Prepare
    algo = _fedavgm()
    x0 = p32(1.0, 2.0)
    state = algo.init_state(x0)
    # Execute
    algo.server_update(x0, state, aggregate(1, p32(3.0, 1.0)))
    # Assert
    np.testing.assert_array_equal(x0["w"], [1.0, 2.0])
    np.testing.assert_array_equal(state.velocity["w"], [0.0, 0.0])


def test_state_survives_the_checkpoint_codec() -> None:
    """v_1 = [2, -1] from the first momentum round encodes to arrays and decodes to the same FedAvgMState."""
    # Prepare
    algo = _fedavgm()
    state = algo.server_update(p32(1.0, 2.0), algo.init_state(p32(1.0, 2.0)), aggregate(1, p32(3.0, 1.0))).state
    # Execute
    arrays, layout = encode_state(state)
    back = decode_state(FedAvgMState, arrays, layout)
    # Assert
    np.testing.assert_array_equal(back.velocity["w"], [2.0, -1.0])


def test_client_half_is_fedavgs() -> None:
    """FedAvgM changes only the server: plain ClientHalf, no loss term, nothing broadcast besides the model."""
    # Prepare
    algo = _fedavgm()
    fm = linear([[1.0, 2.0]])
    half = algo.client(context(fm))
    x = torch.ones(1, 2)
    # Execute
    term = half.loss_term(fm.model(x), x, torch.zeros(1, dtype=torch.long))
    # Assert
    assert type(half) is ClientHalf and term is None
    assert algo.broadcast(p32(1.0, 2.0), algo.init_state(p32(1.0, 2.0))) == {}
    assert BUILTIN_ALGORITHMS["fedavgm"] is FedAvgM and FedAvgM.coefficients == ("beta", "server_lr")


@pytest.mark.parametrize(
    "kwargs", [{"beta": 1.0}, {"beta": -0.1}, {"beta": 1.5}, {"server_lr": 0.0}, {"server_lr": -1.0}]
)
def test_params_reject_bad_values(kwargs: dict[str, float]) -> None:
    """beta in [0, 1), server_lr > 0; the message names the key."""
    # Prepare
    (key,) = kwargs
    # Execute / Assert
    with pytest.raises(ValueError, match=f"{key}="):
        FedAvgMParams(**kwargs)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"beta": 1.0}, "algorithm.beta=1.0"),
        ({"server_lr": 0}, "algorithm.server_lr="),
        ({"beta": "high"}, "algorithm.beta"),
    ],
)
def test_config_errors_name_the_key(values: dict[str, object], expected: str) -> None:
    """Through the config a bad coefficient is a UserError naming algorithm.<key>."""
    # Prepare / Execute
    with pytest.raises(UserError) as info:
        build_config({"algorithm": {"name": "fedavgm", **values}})
    # Assert
    assert expected in str(info.value)


def test_config_rejects_another_algorithms_key_naming_fedavgms_keys() -> None:
    """algorithm.mu belongs to FedProx: the error names it and FedAvgM's own keys beta and server_lr."""
    # Prepare / Execute
    with pytest.raises(UserError) as info:
        build_config({"algorithm": {"name": "fedavgm", "mu": 0.1}})
    # Assert
    text = str(info.value)
    assert "algorithm.mu" in text and "beta" in text and "server_lr" in text


def test_config_builds_fedavgm_with_its_keys() -> None:
    """algorithm.name=fedavgm with beta=0.7, server_lr=0.5 gives FedAvgMParams(0.7, 0.5); defaults 0.9 and 1.0."""
    # Prepare / Execute
    cfg = build_config({"algorithm": {"name": "fedavgm", "beta": 0.7, "server_lr": 0.5}})
    default = build_config({"algorithm": {"name": "fedavgm"}})
    # Assert
    assert cfg.algorithm.params == FedAvgMParams(beta=0.7, server_lr=0.5)
    assert default.algorithm.params == FedAvgMParams(beta=0.9, server_lr=1.0)
    assert isinstance(build_algorithm(cfg.algorithm), FedAvgM)
