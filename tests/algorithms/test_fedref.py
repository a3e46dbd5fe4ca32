"""Tests for FedRef's two halves: the client objective and the server step driven round by round.

Rounds use theta_0 = [1, 2] and hand-chosen aggregates A_1..A_4 = [4, -2], [7, 1], [9, 3], [5, 5].
With rho = 2 the linear reference weights are (2/3, 1/3); with lam = 0.25, eta_s = 1 the
closed-form shrinkage is s = 0.5 / 1.5 = 1/3 and the gradient step's coefficient 2 lam eta_s = 1/2.
Warm-up (rounds 1 and 2) gives theta_1 = A_1, theta_2 = A_2, hence
ref_1 = 2/3 [4, -2] + 1/3 [1, 2] = [3, -2/3] and ref_2 = 2/3 [7, 1] + 1/3 [4, -2] = [6, 0].
"""

from __future__ import annotations

import numpy as np
import pytest

from fedref_ray.algorithms import FedRef, build_algorithm
from fedref_ray.algorithms.base import ClientObjective, ServerState
from fedref_ray.config import AlgorithmConfig

THETA0 = [1.0, 2.0]
AGGREGATES = [[4.0, -2.0], [7.0, 1.0], [9.0, 3.0], [5.0, 5.0]]


def _p(values: list[float]) -> dict[str, np.ndarray]:
    return {"w": np.array(values, dtype=np.float32)}


def _close(actual: np.ndarray, expected: list[float]) -> None:
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-7)


def _fedref(**kwargs: object) -> FedRef:
    cfg = AlgorithmConfig(name="fedref", **{"rho": 2, "lam": 0.25, "eta_s": 1.0, **kwargs})
    algo = build_algorithm(cfg)
    assert isinstance(algo, FedRef)
    return algo


def _drive(
    algo: FedRef, aggregates: list[list[float]], losses: list[float] | None = None
) -> list[tuple[ServerState, bool]]:
    """Run server_update once per aggregate from theta_0; return (state, step_applied) after each round."""
    state = algo.init_state(_p(THETA0))
    losses = losses if losses is not None else [1.0] * len(aggregates)
    out = []
    for agg, loss in zip(aggregates, losses, strict=True):
        update = algo.server_update(state, _p(agg), loss)
        state = update.state
        out.append((state, update.step_applied))
    return out


# ----------------------------------------------------------------------------- client half


@pytest.mark.parametrize(("client_prior", "anchor"), [("global", "global"), ("reference", "reference")])
def test_client_objective_names_mu_and_the_anchor(client_prior: str, anchor: str) -> None:
    # Prepare
    algo = _fedref(mu=0.3, client_prior=client_prior)
    # Execute
    objective = algo.client_objective()
    # Assert
    assert objective == ClientObjective(mu=0.3, anchor=anchor)


def test_default_client_objective_is_the_reference_codes_plain_clients() -> None:
    """Default config: mu = 0 and client_prior = global (METHOD.md's table)."""
    # Prepare / Execute
    objective = FedRef(AlgorithmConfig(name="fedref")).client_objective()
    # Assert
    assert objective == ClientObjective(mu=0.0, anchor="global")


# ----------------------------------------------------------------------------- server half


def test_init_state_holds_theta0_as_history_and_reference() -> None:
    # Prepare / Execute
    state = _fedref().init_state(_p(THETA0))
    # Assert
    assert state.round == 0 and state.last_loss is None and state.prev_reference is None
    assert len(state.history) == 1
    np.testing.assert_array_equal(state.history[0]["w"], _p(THETA0)["w"])
    np.testing.assert_array_equal(state.reference["w"], _p(THETA0)["w"])


def test_anchor_prior_closed_form_linear() -> None:
    """Round 3: theta_3 = 2/3 A_3 + 1/3 ref_2 = [6, 2] + [2, 0] = [8, 2];
    ref_3 = 2/3 [8, 2] + 1/3 [7, 1] = [23/3, 5/3].
    Round 4: theta_4 = 2/3 [5, 5] + 1/3 [23/3, 5/3] = [30/9 + 23/9, 30/9 + 5/9] = [53/9, 35/9];
    ref_4 = 2/3 [53/9, 35/9] + 1/3 [8, 2] = [106/27 + 72/27, 70/27 + 18/27] = [178/27, 88/27]."""
    # Prepare
    algo = _fedref(prior="anchor", step="closed_form", ref_weighting="linear")
    # Execute
    rounds = _drive(algo, AGGREGATES)
    # Assert
    (s1, a1), (s2, a2), (s3, a3), (s4, a4) = rounds
    assert (a1, a2, a3, a4) == (False, False, True, True)
    _close(s1.reference["w"], [3.0, -2 / 3])
    _close(s2.reference["w"], [6.0, 0.0])
    _close(s3.params["w"], [8.0, 2.0])
    _close(s3.reference["w"], [23 / 3, 5 / 3])
    _close(s4.params["w"], [53 / 9, 35 / 9])
    _close(s4.reference["w"], [178 / 27, 88 / 27])
    assert [s.round for s, _ in rounds] == [1, 2, 3, 4]


def test_anchor_prior_gradient_step() -> None:
    """Coefficient 1/2. Round 3: theta_3 = 1/2 [9, 3] + 1/2 [6, 0] = [15/2, 3/2];
    ref_3 = 2/3 [15/2, 3/2] + 1/3 [7, 1] = [22/3, 4/3].
    Round 4: theta_4 = 1/2 [5, 5] + 1/2 [22/3, 4/3] = [37/6, 19/6]."""
    # Prepare
    algo = _fedref(prior="anchor", step="gradient")
    # Execute
    rounds = _drive(algo, AGGREGATES)
    # Assert
    _close(rounds[2][0].params["w"], [15 / 2, 3 / 2])
    _close(rounds[2][0].reference["w"], [22 / 3, 4 / 3])
    _close(rounds[3][0].params["w"], [37 / 6, 19 / 6])


def test_delta_prior_closed_form() -> None:
    """Round 3: prior mean = theta_2 + ref_2 - ref_1 = [7, 1] + [6, 0] - [3, -2/3] = [10, 5/3];
    theta_3 = 2/3 [9, 3] + 1/3 [10, 5/3] = [28/3, 23/9]; ref_3 = 2/3 theta_3 + 1/3 [7, 1] = [77/9, 55/27].
    Round 4: prior mean = theta_3 + ref_3 - ref_2 = [28/3 + 77/9 - 6, 23/9 + 55/27] = [107/9, 124/27];
    theta_4 = 2/3 [5, 5] + 1/3 [107/9, 124/27] = [90/27 + 107/27, 270/81 + 124/81] = [197/27, 394/81]."""
    # Prepare
    algo = _fedref(prior="delta", step="closed_form")
    # Execute
    rounds = _drive(algo, AGGREGATES)
    # Assert
    (s1, _), (s2, _), (s3, a3), (s4, a4) = rounds
    assert a3 and a4
    _close(s3.prev_reference["w"], [6.0, 0.0])
    _close(s3.params["w"], [28 / 3, 23 / 9])
    _close(s3.reference["w"], [77 / 9, 55 / 27])
    _close(s4.params["w"], [197 / 27, 394 / 81])


def test_delta_prior_gradient_step() -> None:
    """Coefficient 1/2. Round 3: theta_3 = 1/2 [9, 3] + 1/2 [10, 5/3] = [19/2, 7/3];
    ref_3 = 2/3 [19/2, 7/3] + 1/3 [7, 1] = [26/3, 17/9].
    Round 4: prior mean = [19/2 + 26/3 - 6, 7/3 + 17/9 - 0] = [73/6, 38/9];
    theta_4 = 1/2 [5, 5] + 1/2 [73/6, 38/9] = [103/12, 83/18]."""
    # Prepare
    algo = _fedref(prior="delta", step="gradient")
    # Execute
    rounds = _drive(algo, AGGREGATES)
    # Assert
    _close(rounds[2][0].params["w"], [19 / 2, 7 / 3])
    _close(rounds[3][0].params["w"], [103 / 12, 83 / 18])


def test_anchor_prior_uniform_weighting() -> None:
    """Uniform over 2: ref_1 = ([4, -2] + [1, 2]) / 2 = [5/2, 0]; ref_2 = ([7, 1] + [4, -2]) / 2 = [11/2, -1/2].
    Round 3: theta_3 = 2/3 [9, 3] + 1/3 [11/2, -1/2] = [47/6, 11/6];
    ref_3 = ([47/6, 11/6] + [7, 1]) / 2 = [89/12, 17/12].
    Round 4: theta_4 = 2/3 [5, 5] + 1/3 [89/12, 17/12] = [209/36, 137/36]."""
    # Prepare
    algo = _fedref(prior="anchor", ref_weighting="uniform")
    # Execute
    rounds = _drive(algo, AGGREGATES)
    # Assert
    _close(rounds[0][0].reference["w"], [5 / 2, 0.0])
    _close(rounds[1][0].reference["w"], [11 / 2, -1 / 2])
    _close(rounds[2][0].params["w"], [47 / 6, 11 / 6])
    _close(rounds[2][0].reference["w"], [89 / 12, 17 / 12])
    _close(rounds[3][0].params["w"], [209 / 36, 137 / 36])


@pytest.mark.parametrize("prior", ["anchor", "delta"])
def test_warm_up_rounds_are_fedavg_exactly(prior: str) -> None:
    """rho = 3: rounds 1..3 return the aggregate bit for bit and report no step; round 4 is fine-tuned
    (anchor: 2/3 A_4 + 1/3 ref_3, which differs from A_4 because ref_3 = 1/2 A_3 + 1/3 A_2 + 1/6 A_1 != A_4)."""
    # Prepare
    algo = _fedref(rho=3, prior=prior, lam=10.0)
    # Execute
    rounds = _drive(algo, AGGREGATES)
    # Assert
    for (state, applied), agg in zip(rounds[:3], AGGREGATES[:3], strict=True):
        assert not applied
        np.testing.assert_array_equal(state.params["w"], _p(agg)["w"])
    assert rounds[3][1]
    assert not np.allclose(rounds[3][0].params["w"], _p(AGGREGATES[3])["w"])


def test_anchor_after_warm_up_with_rho_three() -> None:
    """rho = 3, lam = 0.25: ref_3 = 3/6 [9, 3] + 2/6 [7, 1] + 1/6 [4, -2] = [27/6 + 14/6 + 4/6, 9/6 + 2/6 - 2/6]
    = [45/6, 9/6] = [15/2, 3/2]; theta_4 = 2/3 [5, 5] + 1/3 [15/2, 3/2] = [10/3 + 5/2, 10/3 + 1/2] = [35/6, 23/6]."""
    # Prepare
    algo = _fedref(rho=3)
    # Execute
    rounds = _drive(algo, AGGREGATES)
    # Assert
    _close(rounds[2][0].reference["w"], [15 / 2, 3 / 2])
    _close(rounds[3][0].params["w"], [35 / 6, 23 / 6])


def test_gate_applies_only_when_the_mean_loss_rose_by_more_than_gate_delta() -> None:
    """gate_delta = 0.25, rho = 2. Losses per round: 1.0, 0.5 (warm-up), then
    round 3: 0.5 -> 1.0 (rise 0.5 > 0.25: applied, theta_3 = [8, 2] as in the closed-form test),
    round 4: 1.0 -> 1.25 (rise exactly 0.25, not > 0.25: not applied, theta_4 = A_4),
    round 5: 1.25 -> 1.0 (fell: not applied), round 6: 1.0 -> 2.0 (rise 1.0: applied)."""
    # Prepare
    algo = _fedref(gate_delta=0.25)
    aggregates = [*AGGREGATES, [0.0, 0.0], [3.0, 3.0]]
    losses = [1.0, 0.5, 1.0, 1.25, 1.0, 2.0]
    # Execute
    rounds = _drive(algo, aggregates, losses)
    # Assert
    assert [applied for _, applied in rounds] == [False, False, True, False, False, True]
    _close(rounds[2][0].params["w"], [8.0, 2.0])
    for i in (3, 4):
        np.testing.assert_array_equal(rounds[i][0].params["w"], _p(aggregates[i])["w"])
    assert [s.last_loss for s, _ in rounds] == losses


def test_gate_never_applies_during_warm_up() -> None:
    """Losses rise sharply in rounds 1 and 2 (warm-up, rho = 2): still plain averaging."""
    # Prepare
    algo = _fedref(gate_delta=0.0)
    # Execute
    rounds = _drive(algo, AGGREGATES[:2], [1.0, 50.0])
    # Assert
    assert [applied for _, applied in rounds] == [False, False]
    np.testing.assert_array_equal(rounds[1][0].params["w"], _p(AGGREGATES[1])["w"])


def test_negative_gate_delta_also_applies_when_the_loss_fell_a_little() -> None:
    """gate_delta = -0.5: round 3 loss 1.0 -> 0.75 (change -0.25 > -0.5) is applied."""
    # Prepare
    algo = _fedref(gate_delta=-0.5)
    # Execute
    rounds = _drive(algo, AGGREGATES[:3], [1.0, 1.0, 0.75])
    # Assert
    assert rounds[2][1]
    _close(rounds[2][0].params["w"], [8.0, 2.0])


def test_history_is_truncated_to_rho_newest_first() -> None:
    """rho = 3, lam = 0 (so theta_r = A_r): after 6 rounds H = (A_6, A_5, A_4) and
    ref_6 = 3/6 A_6 + 2/6 A_5 + 1/6 A_4 = 1/2 [6] + 1/3 [3] + 1/6 [-6] = [3 + 1 - 1] = [3]."""
    # Prepare
    algo = build_algorithm(AlgorithmConfig(name="fedref", rho=3, lam=0.0))
    state = algo.init_state({"w": np.array([0.0], np.float32)})
    aggregates = [[1.0], [2.0], [9.0], [-6.0], [3.0], [6.0]]
    # Execute
    lengths = []
    for agg in aggregates:
        state = algo.server_update(state, _p(agg), 1.0).state
        lengths.append(len(state.history))
    # Assert
    assert lengths == [2, 3, 3, 3, 3, 3]
    assert [float(h["w"][0]) for h in state.history] == [6.0, 3.0, -6.0]
    _close(state.reference["w"], [3.0])


def test_rho_one_makes_the_reference_the_previous_global_model() -> None:
    """rho = 1: H holds only theta_r, so ref_r = theta_r. Round 1 is warm-up (theta_1 = A_1 = [4, -2]);
    round 2: theta_2 = 2/3 [7, 1] + 1/3 [4, -2] = [6, 0] (lam = 0.25)."""
    # Prepare
    algo = _fedref(rho=1)
    # Execute
    rounds = _drive(algo, AGGREGATES[:2])
    # Assert
    assert [applied for _, applied in rounds] == [False, True]
    _close(rounds[0][0].reference["w"], [4.0, -2.0])
    _close(rounds[1][0].params["w"], [6.0, 0.0])
    _close(rounds[1][0].reference["w"], [6.0, 0.0])


@pytest.mark.parametrize("prior", ["anchor", "delta"])
@pytest.mark.parametrize("step", ["closed_form", "gradient"])
def test_lam_zero_gives_exactly_the_aggregate(prior: str, step: str) -> None:
    # Prepare
    algo = _fedref(lam=0.0, prior=prior, step=step, rho=1)
    aggregates = [[0.1, -0.3], [1e-3, 7.7], [-2.2, 3.3], [0.123456, -9.87654]]
    # Execute
    rounds = _drive(algo, aggregates)
    # Assert
    for (state, _), agg in zip(rounds, aggregates, strict=True):
        np.testing.assert_array_equal(state.params["w"], _p(agg)["w"])


def test_server_update_does_not_mutate_the_old_state() -> None:
    # Prepare
    algo = _fedref(rho=1)
    state = algo.init_state(_p(THETA0))
    # Execute
    algo.server_update(state, _p([4.0, -2.0]), 1.0)
    # Assert
    assert state.round == 0 and len(state.history) == 1 and state.last_loss is None
    np.testing.assert_array_equal(state.params["w"], _p(THETA0)["w"])
