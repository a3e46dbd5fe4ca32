"""Tests for FedOpt's server step (Reddi et al. 2021, Algorithm 2), one and two steps by hand.

Shared setting: theta_0 = [1, 2], server_lr = 0.5, beta1 = 0.5, beta2 = 0.75, tau = 0.1, so
m_0 = [0, 0] and v_0 = tau^2 = [0.01, 0.01]. Round 1 aggregate A_1 = [3, 1], pseudo-gradient
Delta_1 = A_1 - theta_0 = [2, -1], m_1 = 0.5 m_0 + 0.5 Delta_1 = [1, -0.5].
Parameters travel as float32, so the round-2 pseudo-gradient is taken from float32(theta_1).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from fedref_ray.algorithms import BUILTIN_ALGORITHMS, ClientHalf, FedAdagrad, FedOpt, build_algorithm
from fedref_ray.algorithms.fedopt import FedOptParams, FedOptState
from fedref_ray.config import AlgorithmConfig, build_config
from fedref_ray.errors import UserError
from tests.algorithms.helpers import aggregate, context, linear

LR, B1, B2, TAU = 0.5, 0.5, 0.75, 0.1


def _fedopt(optimizer: str) -> FedOpt:
    params = FedOptParams(server_optimizer=optimizer, server_lr=LR, beta1=B1, beta2=B2, tau=TAU)
    algo = build_algorithm(AlgorithmConfig(name="fedopt", params=params))
    assert isinstance(algo, FedOpt)
    return algo


def _p(*values: float) -> dict[str, np.ndarray]:
    return {"w": np.array(values, dtype=np.float32)}


def _f32(x: float) -> float:
    return float(np.float32(x))


def test_init_state_has_m_zero_and_v_tau_squared() -> None:
    """m_0 = 0 and v_0 = tau^2 = 0.01 for every key, shaped like the model."""
    # Prepare / Execute
    state = _fedopt("adam").init_state({"w": np.array([1.0, 2.0], np.float32), "b": np.zeros((2, 3), np.float32)})
    # Assert
    assert isinstance(state, FedOptState)
    np.testing.assert_array_equal(state.m["w"], [0.0, 0.0])
    np.testing.assert_allclose(state.v["w"], [0.01, 0.01], rtol=1e-12)
    assert state.m["b"].shape == (2, 3) and state.v["b"].shape == (2, 3)


def test_client_half_is_fedavgs() -> None:
    """FedOpt changes only the server: plain ClientHalf, no loss term, nothing broadcast besides the model."""
    # Prepare
    algo = _fedopt("yogi")
    fm = linear([[1.0, 2.0]])
    half = algo.client(context(fm))
    x = torch.ones(1, 2)
    # Execute
    term = half.loss_term(fm.model(x), x, torch.zeros(1, dtype=torch.long))
    # Assert
    assert type(half) is ClientHalf and term is None
    assert algo.broadcast(_p(1.0, 2.0), algo.init_state(_p(1.0, 2.0))) == {}


def test_adam_one_and_two_steps() -> None:
    """Adam: v_1 = 0.75 * 0.01 + 0.25 * Delta_1^2 = [1.0075, 0.2575];
    theta_1 = theta_0 + 0.5 m_1 / (sqrt(v_1) + 0.1) = [1 + 0.5 / (sqrt(1.0075) + 0.1), 2 - 0.25 / (sqrt(0.2575) + 0.1)].
    Round 2 with A_2 = [2, 4]: Delta_2 = A_2 - theta_1, m_2 = 0.5 m_1 + 0.5 Delta_2,
    v_2 = 0.75 v_1 + 0.25 Delta_2^2, theta_2 = theta_1 + 0.5 m_2 / (sqrt(v_2) + 0.1)."""
    # Prepare
    algo = _fedopt("adam")
    theta0 = _p(1.0, 2.0)
    state = algo.init_state(theta0)
    v1 = [1.0075, 0.2575]
    t1 = [_f32(1 + 0.5 / (math.sqrt(1.0075) + 0.1)), _f32(2 - 0.25 / (math.sqrt(0.2575) + 0.1))]
    d2 = [2.0 - t1[0], 4.0 - t1[1]]
    m2 = [0.5 * 1.0 + 0.5 * d2[0], 0.5 * -0.5 + 0.5 * d2[1]]
    v2 = [0.75 * v1[0] + 0.25 * d2[0] ** 2, 0.75 * v1[1] + 0.25 * d2[1] ** 2]
    t2 = [t1[i] + 0.5 * m2[i] / (math.sqrt(v2[i]) + 0.1) for i in range(2)]
    # Execute
    first = algo.server_update(theta0, state, aggregate(1, _p(3.0, 1.0), 0.9))
    second = algo.server_update(first.model, first.state, aggregate(2, _p(2.0, 4.0), 0.8))
    # Assert
    assert first.step_applied and second.step_applied
    np.testing.assert_allclose(first.state.m["w"], [1.0, -0.5], rtol=1e-6)
    np.testing.assert_allclose(first.state.v["w"], v1, rtol=1e-6)
    np.testing.assert_allclose(first.model["w"], t1, rtol=1e-6)
    np.testing.assert_allclose(second.state.m["w"], m2, rtol=1e-6)
    np.testing.assert_allclose(second.state.v["w"], v2, rtol=1e-6)
    np.testing.assert_allclose(second.model["w"], t2, rtol=1e-6)
    assert second.model["w"].dtype == np.float32


def test_yogi_one_and_two_steps() -> None:
    """Yogi: v_t = v_{t-1} - (1 - beta2) Delta^2 sign(v_{t-1} - Delta^2).
    Round 1: v_0 = 0.01 < Delta_1^2 = [4, 1], sign -1, so v_1 = 0.01 + 0.25 [4, 1] = [1.01, 0.26];
    theta_1 = [1 + 0.5 / (sqrt(1.01) + 0.1), 2 - 0.25 / (sqrt(0.26) + 0.1)] ~ [1.4525, 1.5901].
    Round 2 with A_2 = [1.5, 4]: Delta_2 ~ [0.0475, 2.41]; coordinate 0 has v_1 > Delta^2, so v
    shrinks: v_2 = 1.01 - 0.25 Delta_2[0]^2; coordinate 1 has v_1 < Delta^2: v_2 = 0.26 + 0.25 Delta_2[1]^2."""
    # Prepare
    algo = _fedopt("yogi")
    theta0 = _p(1.0, 2.0)
    state = algo.init_state(theta0)
    v1 = [1.01, 0.26]
    t1 = [_f32(1 + 0.5 / (math.sqrt(1.01) + 0.1)), _f32(2 - 0.25 / (math.sqrt(0.26) + 0.1))]
    d2 = [1.5 - t1[0], 4.0 - t1[1]]
    m2 = [0.5 * 1.0 + 0.5 * d2[0], 0.5 * -0.5 + 0.5 * d2[1]]
    v2 = [1.01 - 0.25 * d2[0] ** 2, 0.26 + 0.25 * d2[1] ** 2]
    t2 = [t1[i] + 0.5 * m2[i] / (math.sqrt(v2[i]) + 0.1) for i in range(2)]
    # Execute
    first = algo.server_update(theta0, state, aggregate(1, _p(3.0, 1.0), 0.9))
    second = algo.server_update(first.model, first.state, aggregate(2, _p(1.5, 4.0), 0.8))
    # Assert
    np.testing.assert_allclose(first.state.m["w"], [1.0, -0.5], rtol=1e-6)
    np.testing.assert_allclose(first.state.v["w"], v1, rtol=1e-6)
    np.testing.assert_allclose(first.model["w"], t1, rtol=1e-6)
    np.testing.assert_allclose(second.state.v["w"], v2, rtol=1e-6)
    assert second.state.v["w"][0] < first.state.v["w"][0]  # Yogi's shrinking branch
    assert second.state.v["w"][1] > first.state.v["w"][1]  # and its growing branch
    np.testing.assert_allclose(second.state.m["w"], m2, rtol=1e-6)
    np.testing.assert_allclose(second.model["w"], t2, rtol=1e-6)


def test_adam_and_yogi_differ_in_the_second_moment_only() -> None:
    """Same first step for m; v_1 differs: Adam [1.0075, 0.2575] vs Yogi [1.01, 0.26] (0.75 tau^2 vs tau^2)."""
    # Prepare
    adam, yogi = _fedopt("adam"), _fedopt("yogi")
    # Execute
    a = adam.server_update(_p(1.0, 2.0), adam.init_state(_p(1.0, 2.0)), aggregate(1, _p(3.0, 1.0))).state
    y = yogi.server_update(_p(1.0, 2.0), yogi.init_state(_p(1.0, 2.0)), aggregate(1, _p(3.0, 1.0))).state
    # Assert
    np.testing.assert_array_equal(a.m["w"], y.m["w"])
    np.testing.assert_allclose(y.v["w"] - a.v["w"], [0.0025, 0.0025], rtol=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "yogi"])
def test_zero_pseudo_gradient_from_rest_leaves_the_model(optimizer: str) -> None:
    """Delta = 0 and m_0 = 0 give m_1 = 0, so theta_1 = theta_0 (v stays positive: no division by zero)."""
    # Prepare
    algo = _fedopt(optimizer)
    state = algo.init_state(_p(1.0, 2.0))
    # Execute
    update = algo.server_update(_p(1.0, 2.0), state, aggregate(1, _p(1.0, 2.0)))
    # Assert
    np.testing.assert_array_equal(update.model["w"], _p(1.0, 2.0)["w"])
    assert np.all(update.state.v["w"] > 0)


def test_server_update_does_not_mutate_the_old_state_or_model() -> None:
    """The round-0 moments and theta_0 are unchanged after a step (checkpoints keep the old state)."""
    # Prepare
    algo = _fedopt("adam")
    theta0 = _p(1.0, 2.0)
    state = algo.init_state(theta0)
    # Execute
    algo.server_update(theta0, state, aggregate(1, _p(3.0, 1.0)))
    # Assert
    np.testing.assert_array_equal(theta0["w"], [1.0, 2.0])
    np.testing.assert_array_equal(state.m["w"], [0.0, 0.0])
    np.testing.assert_allclose(state.v["w"], [0.01, 0.01], rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"server_lr": 0.0},
        {"server_lr": -0.1},
        {"beta1": 1.0},
        {"beta1": -0.1},
        {"beta2": 1.0},
        {"beta2": -1e-9},
        {"tau": 0.0},
        {"tau": -1e-3},
    ],
)
def test_params_reject_bad_values(kwargs: dict[str, float]) -> None:
    """server_lr > 0, beta1 and beta2 in [0, 1), tau > 0."""
    # Prepare
    (key,) = kwargs
    # Execute / Assert
    with pytest.raises(ValueError, match=f"{key}="):
        FedOptParams(**kwargs)


def test_params_reject_an_unknown_server_optimizer() -> None:
    """server_optimizer is adam, yogi or adagrad; anything else built in Python is a ValueError."""
    # Prepare / Execute / Assert
    with pytest.raises(ValueError):
        FedOptParams(server_optimizer="sgd")  # type: ignore[arg-type]


def test_config_rejects_an_unknown_server_optimizer() -> None:
    """Through the config the Literal type is checked: a UserError naming the key and the choices."""
    # Prepare / Execute
    with pytest.raises(UserError) as info:
        build_config({"algorithm": {"name": "fedopt", "server_optimizer": "sgd"}})
    # Assert
    assert "algorithm.server_optimizer='sgd'" in str(info.value) and "adam, yogi" in str(info.value)


def _fedopt_v(optimizer: str, variant: str, beta1: float = B1) -> FedOpt:
    params = FedOptParams(server_optimizer=optimizer, server_lr=LR, beta1=beta1, beta2=B2, tau=TAU, variant=variant)  # type: ignore[arg-type]
    return build_algorithm(AlgorithmConfig(name="fedopt", params=params))  # type: ignore[return-value]


def _two_steps(algo: FedOpt, a1: tuple[float, float], a2: tuple[float, float]):
    theta0 = _p(1.0, 2.0)
    first = algo.server_update(theta0, algo.init_state(theta0), aggregate(1, _p(*a1), 0.9))
    second = algo.server_update(first.model, first.state, aggregate(2, _p(*a2), 0.8))
    return first, second


def test_adagrad_one_and_two_steps() -> None:
    """Adagrad (paper variant): v_t = v_{t-1} + Delta^2, v_0 = tau^2 = 0.01, m as Adam's.
    Round 1: v_1 = 0.01 + [4, 1] = [4.01, 1.01], m_1 = [1, -0.5];
    theta_1 = [1 + 0.5 / (sqrt(4.01) + 0.1), 2 - 0.25 / (sqrt(1.01) + 0.1)] ~ [1.2378, 1.7737].
    Round 2 with A_2 = [2, 4]: Delta_2 = A_2 - theta_1, m_2 = 0.5 m_1 + 0.5 Delta_2, v_2 = v_1 + Delta_2^2
    (never smaller than v_1), theta_2 = theta_1 + 0.5 m_2 / (sqrt(v_2) + 0.1).
    Adam's v_1 would be [1.0075, 0.2575], Yogi's [1.01, 0.26]."""
    # Prepare
    algo = _fedopt("adagrad")
    v1 = [4.01, 1.01]
    t1 = [_f32(1 + 0.5 / (math.sqrt(4.01) + 0.1)), _f32(2 - 0.25 / (math.sqrt(1.01) + 0.1))]
    d2 = [2.0 - t1[0], 4.0 - t1[1]]
    m2 = [0.5 * 1.0 + 0.5 * d2[0], 0.5 * -0.5 + 0.5 * d2[1]]
    v2 = [v1[0] + d2[0] ** 2, v1[1] + d2[1] ** 2]
    t2 = [t1[i] + 0.5 * m2[i] / (math.sqrt(v2[i]) + 0.1) for i in range(2)]
    # Execute
    first, second = _two_steps(algo, (3.0, 1.0), (2.0, 4.0))
    # Assert
    assert first.step_applied and second.step_applied
    np.testing.assert_allclose(first.state.m["w"], [1.0, -0.5], rtol=1e-6)
    np.testing.assert_allclose(first.state.v["w"], v1, rtol=1e-6)
    np.testing.assert_allclose(first.model["w"], t1, rtol=1e-6)
    np.testing.assert_allclose(second.state.m["w"], m2, rtol=1e-6)
    np.testing.assert_allclose(second.state.v["w"], v2, rtol=1e-6)
    assert np.all(second.state.v["w"] > first.state.v["w"])
    np.testing.assert_allclose(second.model["w"], t2, rtol=1e-6)
    assert second.model["w"].dtype == np.float32


@pytest.mark.parametrize("optimizer", ["adam", "yogi", "adagrad"])
def test_flower_variant_starts_both_moments_at_zero(optimizer: str) -> None:
    """variant=flower: m_0 = v_0 = 0 (Flower's np.zeros_like on the first aggregate_fit), paper: v_0 = tau^2."""
    # Prepare / Execute
    flower = _fedopt_v(optimizer, "flower").init_state(_p(1.0, 2.0))
    paper = _fedopt_v(optimizer, "paper").init_state(_p(1.0, 2.0))
    # Assert
    np.testing.assert_array_equal(flower.m["w"], [0.0, 0.0])
    np.testing.assert_array_equal(flower.v["w"], [0.0, 0.0])
    np.testing.assert_allclose(paper.v["w"], [0.01, 0.01], rtol=1e-12)


def test_flower_adam_one_and_two_steps_with_bias_correction() -> None:
    """Flower's FedAdam: v_0 = 0 and the step eta_r = lr sqrt(1 - beta2^(r+1)) / (1 - beta1^(r+1)).
    Round 1: m_1 = [1, -0.5], v_1 = 0.25 [4, 1] = [1, 0.25], sqrt(v_1) = [1, 0.5];
    eta_1 = 0.5 sqrt(1 - 0.75^2) / (1 - 0.5^2) = 0.5 sqrt(0.4375) / 0.75 ~ 0.44096;
    theta_1 = [1 + eta_1 / 1.1, 2 - 0.5 eta_1 / 0.6] ~ [1.40087, 1.63253].
    (Without correction theta_1[0] = 1 + 0.5 / 1.1 ~ 1.4545; with Kingma's t = r, eta_1 = 0.5 sqrt(0.4375) / 0.5.)
    Round 2 with A_2 = [2, 4]: Delta_2 = A_2 - theta_1, m_2 = 0.5 m_1 + 0.5 Delta_2,
    v_2 = 0.75 v_1 + 0.25 Delta_2^2, eta_2 = 0.5 sqrt(1 - 0.75^3) / (1 - 0.5^3) ~ 0.43448,
    theta_2 = theta_1 + eta_2 m_2 / (sqrt(v_2) + 0.1)."""
    # Prepare
    algo = _fedopt_v("adam", "flower")
    eta1 = 0.5 * math.sqrt(1 - 0.75**2) / (1 - 0.5**2)
    eta2 = 0.5 * math.sqrt(1 - 0.75**3) / (1 - 0.5**3)
    t1 = [_f32(1 + eta1 * 1.0 / 1.1), _f32(2 - eta1 * 0.5 / 0.6)]
    d2 = [2.0 - t1[0], 4.0 - t1[1]]
    m2 = [0.5 * 1.0 + 0.5 * d2[0], 0.5 * -0.5 + 0.5 * d2[1]]
    v2 = [0.75 * 1.0 + 0.25 * d2[0] ** 2, 0.75 * 0.25 + 0.25 * d2[1] ** 2]
    t2 = [t1[i] + eta2 * m2[i] / (math.sqrt(v2[i]) + 0.1) for i in range(2)]
    # Execute
    first, second = _two_steps(algo, (3.0, 1.0), (2.0, 4.0))
    # Assert
    assert abs(eta1 - 0.440959) < 1e-6 and abs(eta2 - 0.434483) < 1e-6
    np.testing.assert_allclose(first.state.m["w"], [1.0, -0.5], rtol=1e-6)
    np.testing.assert_allclose(first.state.v["w"], [1.0, 0.25], rtol=1e-6)
    np.testing.assert_allclose(first.model["w"], t1, rtol=1e-6)
    np.testing.assert_allclose(second.state.m["w"], m2, rtol=1e-6)
    np.testing.assert_allclose(second.state.v["w"], v2, rtol=1e-6)
    np.testing.assert_allclose(second.model["w"], t2, rtol=1e-6)
    assert first.step_applied and second.step_applied


def test_flower_yogi_one_and_two_steps_without_bias_correction() -> None:
    """Flower's FedYogi: v_0 = 0 and no bias correction. Round 1: sign(0 - [4, 1]) = -1, so
    v_1 = 0.25 [4, 1] = [1, 0.25]; theta_1 = [1 + 0.5 / 1.1, 2 - 0.25 / 0.6] ~ [1.45455, 1.58333].
    Round 2 with A_2 = [1.5, 4]: Delta_2 ~ [0.04545, 2.41667]; coordinate 0 has v_1 = 1 > Delta^2, so
    v_2 = 1 - 0.25 Delta_2[0]^2 (shrinks); coordinate 1 has v_1 < Delta^2: v_2 = 0.25 + 0.25 Delta_2[1]^2;
    m_2 = 0.5 m_1 + 0.5 Delta_2, theta_2 = theta_1 + 0.5 m_2 / (sqrt(v_2) + 0.1)."""
    # Prepare
    algo = _fedopt_v("yogi", "flower")
    t1 = [_f32(1 + 0.5 / 1.1), _f32(2 - 0.25 / 0.6)]
    d2 = [1.5 - t1[0], 4.0 - t1[1]]
    m2 = [0.5 * 1.0 + 0.5 * d2[0], 0.5 * -0.5 + 0.5 * d2[1]]
    v2 = [1.0 - 0.25 * d2[0] ** 2, 0.25 + 0.25 * d2[1] ** 2]
    t2 = [t1[i] + 0.5 * m2[i] / (math.sqrt(v2[i]) + 0.1) for i in range(2)]
    # Execute
    first, second = _two_steps(algo, (3.0, 1.0), (1.5, 4.0))
    # Assert
    np.testing.assert_allclose(first.state.v["w"], [1.0, 0.25], rtol=1e-6)
    np.testing.assert_allclose(first.model["w"], t1, rtol=1e-6)
    np.testing.assert_allclose(second.state.v["w"], v2, rtol=1e-6)
    assert second.state.v["w"][0] < first.state.v["w"][0] and second.state.v["w"][1] > first.state.v["w"][1]
    np.testing.assert_allclose(second.state.m["w"], m2, rtol=1e-6)
    np.testing.assert_allclose(second.model["w"], t2, rtol=1e-6)


def test_flower_adagrad_one_and_two_steps_with_flowers_beta1_zero() -> None:
    """Flower's FedAdagrad (beta_1 fixed to 0, so m = Delta): v_0 = 0, v_t = v_{t-1} + Delta^2, no bias correction.
    Round 1: m_1 = [2, -1], v_1 = [4, 1]; theta_1 = [1 + 0.5 * 2 / 2.1, 2 - 0.5 / 1.1] ~ [1.47619, 1.54545].
    Round 2 with A_2 = [2, 4]: Delta_2 = A_2 - theta_1, m_2 = Delta_2, v_2 = v_1 + Delta_2^2,
    theta_2 = theta_1 + 0.5 Delta_2 / (sqrt(v_2) + 0.1)."""
    # Prepare
    algo = _fedopt_v("adagrad", "flower", beta1=0.0)
    t1 = [_f32(1 + 1.0 / 2.1), _f32(2 - 0.5 / 1.1)]
    d2 = [2.0 - t1[0], 4.0 - t1[1]]
    v2 = [4.0 + d2[0] ** 2, 1.0 + d2[1] ** 2]
    t2 = [t1[i] + 0.5 * d2[i] / (math.sqrt(v2[i]) + 0.1) for i in range(2)]
    # Execute
    first, second = _two_steps(algo, (3.0, 1.0), (2.0, 4.0))
    # Assert
    np.testing.assert_allclose(first.state.m["w"], [2.0, -1.0], rtol=1e-6)
    np.testing.assert_allclose(first.state.v["w"], [4.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(first.model["w"], t1, rtol=1e-6)
    np.testing.assert_allclose(second.state.m["w"], d2, rtol=1e-6)
    np.testing.assert_allclose(second.state.v["w"], v2, rtol=1e-6)
    np.testing.assert_allclose(second.model["w"], t2, rtol=1e-6)


def test_flower_adagrad_keeps_beta1_as_a_coefficient() -> None:
    """With beta1 = 0.5 the flower variant keeps the momentum (a documented decision; Flower hard-wires 0):
    m_1 = 0.5 [2, -1] = [1, -0.5], v_1 = [4, 1], theta_1 = [1 + 0.5 / 2.1, 2 - 0.25 / 1.1]."""
    # Prepare
    algo = _fedopt_v("adagrad", "flower", beta1=0.5)
    # Execute
    first, _ = _two_steps(algo, (3.0, 1.0), (2.0, 4.0))
    # Assert
    np.testing.assert_allclose(first.state.m["w"], [1.0, -0.5], rtol=1e-6)
    np.testing.assert_allclose(first.model["w"], [_f32(1 + 0.5 / 2.1), _f32(2 - 0.25 / 1.1)], rtol=1e-6)


def test_fedadagrad_name_builds_fedopt_with_adagrad() -> None:
    """algorithm.name=fedadagrad takes FedOpt's keys with server_optimizer adagrad by default and runs
    FedOpt's server step: with the shared setting its first step is the adagrad one above,
    theta_1 = [1 + 0.5 / (sqrt(4.01) + 0.1), 2 - 0.25 / (sqrt(1.01) + 0.1)], v_1 = [4.01, 1.01]."""
    # Prepare
    cfg = build_config({"algorithm": {"name": "fedadagrad", "server_lr": LR, "beta1": B1, "beta2": B2, "tau": TAU}})
    algo = build_algorithm(cfg.algorithm)
    theta0 = _p(1.0, 2.0)
    # Execute
    update = algo.server_update(theta0, algo.init_state(theta0), aggregate(1, _p(3.0, 1.0)))
    # Assert
    assert isinstance(algo, FedOpt) and algo.name == "fedadagrad"
    assert algo.params.server_optimizer == "adagrad" and algo.params.variant == "paper"
    assert [f.name for f in dataclasses.fields(algo.Params)] == [f.name for f in dataclasses.fields(FedOptParams)]
    assert BUILTIN_ALGORITHMS["fedadagrad"] is FedAdagrad
    np.testing.assert_allclose(update.state.v["w"], [4.01, 1.01], rtol=1e-6)
    np.testing.assert_allclose(
        update.model["w"],
        [_f32(1 + 0.5 / (math.sqrt(4.01) + 0.1)), _f32(2 - 0.25 / (math.sqrt(1.01) + 0.1))],
        rtol=1e-6,
    )
    assert update.step_applied


def test_fedadagrad_rejects_another_server_optimizer_naming_the_key() -> None:
    """fedadagrad is adagrad: server_optimizer=adam is a UserError naming the key and its only choice."""
    # Prepare / Execute
    with pytest.raises(UserError) as info:
        build_config({"algorithm": {"name": "fedadagrad", "server_optimizer": "adam"}})
    # Assert
    assert "algorithm.server_optimizer='adam'" in str(info.value) and "adagrad" in str(info.value)


def test_fedopt_defaults_are_unchanged() -> None:
    """algorithm.name=fedopt still means Adam, paper variant, lr 0.01, beta1 0.9, beta2 0.99, tau 1e-3."""
    # Prepare / Execute
    params = build_config({"algorithm": {"name": "fedopt"}}).algorithm.params
    # Assert
    assert params == FedOptParams("adam", 0.01, 0.9, 0.99, 1e-3, "paper")


def test_config_rejects_an_unknown_variant() -> None:
    """variant is paper or flower; anything else is a UserError naming the key and the choices."""
    # Prepare / Execute
    with pytest.raises(UserError) as info:
        build_config({"algorithm": {"name": "fedopt", "variant": "tff"}})
    # Assert
    assert "algorithm.variant='tff'" in str(info.value) and "paper, flower" in str(info.value)
