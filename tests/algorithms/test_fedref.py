"""Tests for FedRef's two halves: the client half (broadcast anchor, proximal term) and the server step round by round.

Rounds use theta_0 = [1, 2] and hand-chosen aggregates A_1..A_4 = [4, -2], [7, 1], [9, 3], [5, 5].
With rho = 2 the linear reference weights are (2/3, 1/3); with lam = 0.25, eta_s = 1 the
closed-form shrinkage is s = 0.5 / 1.5 = 1/3 and the gradient step's coefficient 2 lam eta_s = 1/2.
Warm-up (rounds 1 and 2) gives theta_1 = A_1, theta_2 = A_2, hence
ref_1 = 2/3 [4, -2] + 1/3 [1, 2] = [3, -2/3] and ref_2 = 2/3 [7, 1] + 1/3 [4, -2] = [6, 0].
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fedref_ray.algorithms import FedRef, build_algorithm
from fedref_ray.algorithms.fedprox import ProximalHalf
from fedref_ray.algorithms.fedref import FedRefParams, FedRefState
from fedref_ray.config import AlgorithmConfig, TrainingConfig, build_config
from fedref_ray.errors import UserError
from fedref_ray.params import Params
from fedref_ray.training import sgd_epochs
from tests.algorithms.helpers import aggregate, context, linear

THETA0 = [1.0, 2.0]
AGGREGATES = [[4.0, -2.0], [7.0, 1.0], [9.0, 3.0], [5.0, 5.0]]


def _p(values: list[float]) -> dict[str, np.ndarray]:
    return {"w": np.array(values, dtype=np.float32)}


def _close(actual: np.ndarray, expected: list[float]) -> None:
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-7)


def _fedref(**kwargs: object) -> FedRef:
    params = FedRefParams(**{"rho": 2, "lam": 0.25, "eta_s": 1.0, **kwargs})
    algo = build_algorithm(AlgorithmConfig(name="fedref", params=params))
    assert isinstance(algo, FedRef)
    return algo


def _drive(
    algo: FedRef, aggregates: list[list[float]], losses: list[float] | None = None
) -> list[tuple[Params, FedRefState, bool]]:
    """Run server_update once per aggregate from theta_0 (round r = 1, 2, ...); return (theta_r, state_r,
    step_applied) after each round."""
    model, state = _p(THETA0), algo.init_state(_p(THETA0))
    losses = losses if losses is not None else [1.0] * len(aggregates)
    out = []
    for r, (agg, loss) in enumerate(zip(aggregates, losses, strict=True), start=1):
        update = algo.server_update(model, state, aggregate(r, _p(agg), mean_loss=loss))
        model, state = update.model, update.state
        out.append((model, state, update.step_applied))
    return out


# ----------------------------------------------------------------------------- client half
#
# Client model: torch.nn.Linear(2, 1, bias=False), weight = the global model theta_1 = A_1 = [4, -2] after one
# warm-up round (rho = 2), whose reference is ref_1 = 2/3 [4, -2] + 1/3 [1, 2] = [3, -2/3] (see the module docstring).

X, Y = torch.ones(1, 2), torch.zeros(1, dtype=torch.long)


def _weight(values: list[float]) -> Params:
    """Params keyed like the torch model's state_dict: {"weight": 1 x 2}."""
    return {"weight": np.array([values], dtype=np.float32)}


def _after_round_one(algo: FedRef) -> tuple[Params, FedRefState]:
    theta0 = _weight(THETA0)
    update = algo.server_update(theta0, algo.init_state(theta0), aggregate(1, _weight(AGGREGATES[0])))
    return update.model, update.state


def _term(half, fm) -> float | None:
    term = half.loss_term(fm.model(X), X, Y)
    return None if term is None else float(term.detach())


def test_broadcast_sends_the_reference_as_anchor_when_clients_are_pulled_toward_it() -> None:
    """mu > 0 and client_prior = reference: the broadcast is {"anchor": ref_1} = {"anchor": [3, -2/3]}."""
    # Prepare
    algo = _fedref(mu=0.3, client_prior="reference")
    model, state = _after_round_one(algo)
    # Execute
    sent = algo.broadcast(model, state)
    # Assert
    assert set(sent) == {"anchor"}
    _close(sent["anchor"]["weight"], [[3.0, -2 / 3]])


@pytest.mark.parametrize(("mu", "client_prior"), [(0.0, "reference"), (0.3, "global"), (0.0, "global")])
def test_broadcast_sends_nothing_otherwise(mu: float, client_prior: str) -> None:
    """mu = 0 (no proximal term) or client_prior = global (anchor = the model itself): nothing extra travels."""
    # Prepare
    algo = _fedref(mu=mu, client_prior=client_prior)
    model, state = _after_round_one(algo)
    # Execute / Assert
    assert algo.broadcast(model, state) == {}


def test_reference_prior_client_anchors_at_the_received_reference() -> None:
    """At the start theta = theta_1 = [4, -2], anchor ref_1 = [3, -2/3]: the term is
    mu/2 ((4 - 3)^2 + (-2 + 2/3)^2) = 0.15 (1 + 16/9) = 0.15 * 25/9 = 5/12 (nonzero: not anchored at the start)."""
    # Prepare
    algo = _fedref(mu=0.3, client_prior="reference")
    model, state = _after_round_one(algo)
    fm = linear(model["weight"].tolist())
    half = algo.client(context(fm, broadcast=algo.broadcast(model, state)))
    # Execute
    value = _term(half, fm)
    # Assert
    assert isinstance(half, ProximalHalf)
    assert value == pytest.approx(5 / 12, rel=1e-6)


def test_reference_prior_gradient_points_away_from_the_anchor() -> None:
    """d/dtheta mu/2 ||theta - ref_1||^2 at theta_1 = mu (theta_1 - ref_1) = 0.3 [1, -4/3] = [0.3, -0.4]."""
    # Prepare
    algo = _fedref(mu=0.3, client_prior="reference")
    model, state = _after_round_one(algo)
    fm = linear(model["weight"].tolist())
    half = algo.client(context(fm, broadcast=algo.broadcast(model, state)))
    # Execute
    half.loss_term(fm.model(X), X, Y).backward()
    # Assert
    torch.testing.assert_close(fm.model.weight.grad, torch.tensor([[0.3, -0.4]]), rtol=1e-5, atol=1e-6)


def test_global_prior_client_anchors_at_the_start() -> None:
    """client_prior = global, mu = 0.3: 0 at the start; after moving theta to [5, -2] it is 0.3/2 * 1^2 = 0.15."""
    # Prepare
    algo = _fedref(mu=0.3, client_prior="global")
    model, state = _after_round_one(algo)
    fm = linear(model["weight"].tolist())
    half = algo.client(context(fm, broadcast=algo.broadcast(model, state)))
    # Execute
    at_start = _term(half, fm)
    with torch.no_grad():
        fm.model.weight.copy_(torch.tensor([[5.0, -2.0]]))
    moved = _term(half, fm)
    # Assert
    assert at_start == 0.0
    assert moved == pytest.approx(0.15, rel=1e-6)


@pytest.mark.parametrize("client_prior", ["global", "reference"])
def test_default_mu_zero_clients_are_plain_sgd(client_prior: str) -> None:
    """Default mu = 0 (the reference code's plain clients): no loss term whatever the client prior."""
    # Prepare
    algo = _fedref(client_prior=client_prior)
    model, state = _after_round_one(algo)
    fm = linear([[5.0, 5.0]])
    half = algo.client(context(fm, broadcast=algo.broadcast(model, state)))
    # Execute / Assert
    assert FedRefParams().mu == 0.0 and FedRefParams().client_prior == "global"
    assert _term(half, fm) is None


def test_local_sgd_contracts_toward_the_reference() -> None:
    """Linear(2, 2, bias=False), x = 0 so the cross-entropy gradient (p - e_y) x^T is exactly 0: each SGD step is
    theta <- theta - lr mu (theta - a), so theta_t - a = (1 - lr mu)^t (theta_0 - a). lr = 0.5, mu = 1, t = 3 steps:
    factor 1/8. theta_0 - a = [[11, 7], [-5, 1]] - [[3, 1], [-1, 0]] = [[8, 6], [-4, 1]], so
    theta_3 = a + [[1, 0.75], [-0.5, 0.125]] = [[4, 1.75], [-1.5, 0.125]]."""
    # Prepare
    algo = _fedref(mu=1.0, client_prior="reference")
    start = np.array([[11.0, 7.0], [-5.0, 1.0]], np.float32)
    anchor = np.array([[3.0, 1.0], [-1.0, 0.0]], np.float32)
    fm = linear(start.tolist())
    half = algo.client(context(fm, broadcast={"anchor": {"weight": anchor}}, lr=0.5))
    cfg = TrainingConfig(local_epochs=3, batch_size=1, lr=0.5)
    x, y = np.zeros((1, 2), np.float32), np.array([1], np.int64)
    # Execute
    stats = sgd_epochs(fm.model, x, y, np.arange(1), cfg, np.random.default_rng(0), half=half)
    # Assert
    assert stats.steps == 3
    np.testing.assert_allclose(fm.model.weight.detach().numpy(), [[4.0, 1.75], [-1.5, 0.125]], rtol=1e-6)


# ----------------------------------------------------------------------------- server half


def test_init_state_holds_theta0_as_history_and_reference() -> None:
    # Prepare / Execute
    state = _fedref().init_state(_p(THETA0))
    # Assert
    assert isinstance(state, FedRefState)
    assert state.last_loss is None and state.prev_reference is None
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
    (_, s1, a1), (_, s2, a2), (t3, s3, a3), (t4, s4, a4) = rounds
    assert (a1, a2, a3, a4) == (False, False, True, True)
    _close(s1.reference["w"], [3.0, -2 / 3])
    _close(s2.reference["w"], [6.0, 0.0])
    _close(t3["w"], [8.0, 2.0])
    _close(s3.reference["w"], [23 / 3, 5 / 3])
    _close(t4["w"], [53 / 9, 35 / 9])
    _close(s4.reference["w"], [178 / 27, 88 / 27])


def test_anchor_prior_gradient_step() -> None:
    """Coefficient 1/2. Round 3: theta_3 = 1/2 [9, 3] + 1/2 [6, 0] = [15/2, 3/2];
    ref_3 = 2/3 [15/2, 3/2] + 1/3 [7, 1] = [22/3, 4/3].
    Round 4: theta_4 = 1/2 [5, 5] + 1/2 [22/3, 4/3] = [37/6, 19/6]."""
    # Prepare
    algo = _fedref(prior="anchor", step="gradient")
    # Execute
    rounds = _drive(algo, AGGREGATES)
    # Assert
    _close(rounds[2][0]["w"], [15 / 2, 3 / 2])
    _close(rounds[2][1].reference["w"], [22 / 3, 4 / 3])
    _close(rounds[3][0]["w"], [37 / 6, 19 / 6])


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
    _, _, (t3, s3, a3), (t4, _, a4) = rounds
    assert a3 and a4
    _close(s3.prev_reference["w"], [6.0, 0.0])
    _close(t3["w"], [28 / 3, 23 / 9])
    _close(s3.reference["w"], [77 / 9, 55 / 27])
    _close(t4["w"], [197 / 27, 394 / 81])


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
    _close(rounds[2][0]["w"], [19 / 2, 7 / 3])
    _close(rounds[3][0]["w"], [103 / 12, 83 / 18])


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
    _close(rounds[0][1].reference["w"], [5 / 2, 0.0])
    _close(rounds[1][1].reference["w"], [11 / 2, -1 / 2])
    _close(rounds[2][0]["w"], [47 / 6, 11 / 6])
    _close(rounds[2][1].reference["w"], [89 / 12, 17 / 12])
    _close(rounds[3][0]["w"], [209 / 36, 137 / 36])


@pytest.mark.parametrize("prior", ["anchor", "delta"])
def test_warm_up_rounds_are_fedavg_exactly(prior: str) -> None:
    """rho = 3: rounds 1..3 return the aggregate bit for bit and report no step; round 4 is fine-tuned
    (anchor: 2/3 A_4 + 1/3 ref_3, which differs from A_4 because ref_3 = 1/2 A_3 + 1/3 A_2 + 1/6 A_1 != A_4)."""
    # Prepare
    algo = _fedref(rho=3, prior=prior, lam=10.0)
    # Execute
    rounds = _drive(algo, AGGREGATES)
    # Assert
    for (model, _, applied), agg in zip(rounds[:3], AGGREGATES[:3], strict=True):
        assert not applied
        np.testing.assert_array_equal(model["w"], _p(agg)["w"])
    assert rounds[3][2]
    assert not np.allclose(rounds[3][0]["w"], _p(AGGREGATES[3])["w"])


def test_warm_up_counts_the_aggregates_round_not_the_calls() -> None:
    """The round comes in the Aggregate: from the same round-2 state (rho = 2) an aggregate marked round 2 is
    plain averaging, one marked round 3 is fine-tuned (theta_3 = 2/3 [9, 3] + 1/3 ref_2 = [8, 2])."""
    # Prepare
    algo = _fedref()
    theta2, state2, _ = _drive(algo, AGGREGATES[:2])[1]
    # Execute
    as_round_2 = algo.server_update(theta2, state2, aggregate(2, _p(AGGREGATES[2])))
    as_round_3 = algo.server_update(theta2, state2, aggregate(3, _p(AGGREGATES[2])))
    # Assert
    assert not as_round_2.step_applied and as_round_3.step_applied
    np.testing.assert_array_equal(as_round_2.model["w"], _p(AGGREGATES[2])["w"])
    _close(as_round_3.model["w"], [8.0, 2.0])


def test_anchor_after_warm_up_with_rho_three() -> None:
    """rho = 3, lam = 0.25: ref_3 = 3/6 [9, 3] + 2/6 [7, 1] + 1/6 [4, -2] = [27/6 + 14/6 + 4/6, 9/6 + 2/6 - 2/6]
    = [45/6, 9/6] = [15/2, 3/2]; theta_4 = 2/3 [5, 5] + 1/3 [15/2, 3/2] = [10/3 + 5/2, 10/3 + 1/2] = [35/6, 23/6]."""
    # Prepare
    algo = _fedref(rho=3)
    # Execute
    rounds = _drive(algo, AGGREGATES)
    # Assert
    _close(rounds[2][1].reference["w"], [15 / 2, 3 / 2])
    _close(rounds[3][0]["w"], [35 / 6, 23 / 6])


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
    assert [applied for _, _, applied in rounds] == [False, False, True, False, False, True]
    _close(rounds[2][0]["w"], [8.0, 2.0])
    for i in (3, 4):
        np.testing.assert_array_equal(rounds[i][0]["w"], _p(aggregates[i])["w"])
    assert [s.last_loss for _, s, _ in rounds] == losses


def test_gate_never_applies_during_warm_up() -> None:
    """Losses rise sharply in rounds 1 and 2 (warm-up, rho = 2): still plain averaging."""
    # Prepare
    algo = _fedref(gate_delta=0.0)
    # Execute
    rounds = _drive(algo, AGGREGATES[:2], [1.0, 50.0])
    # Assert
    assert [applied for _, _, applied in rounds] == [False, False]
    np.testing.assert_array_equal(rounds[1][0]["w"], _p(AGGREGATES[1])["w"])


def test_negative_gate_delta_also_applies_when_the_loss_fell_a_little() -> None:
    """gate_delta = -0.5: round 3 loss 1.0 -> 0.75 (change -0.25 > -0.5) is applied."""
    # Prepare
    algo = _fedref(gate_delta=-0.5)
    # Execute
    rounds = _drive(algo, AGGREGATES[:3], [1.0, 1.0, 0.75])
    # Assert
    assert rounds[2][2]
    _close(rounds[2][0]["w"], [8.0, 2.0])


def test_history_is_truncated_to_rho_newest_first() -> None:
    """rho = 3, lam = 0 (so theta_r = A_r): after 6 rounds H = (A_6, A_5, A_4) and
    ref_6 = 3/6 A_6 + 2/6 A_5 + 1/6 A_4 = 1/2 [6] + 1/3 [3] + 1/6 [-6] = [3 + 1 - 1] = [3]."""
    # Prepare
    algo = build_algorithm(AlgorithmConfig(name="fedref", params=FedRefParams(rho=3, lam=0.0)))
    model = {"w": np.array([0.0], np.float32)}
    state = algo.init_state(model)
    aggregates = [[1.0], [2.0], [9.0], [-6.0], [3.0], [6.0]]
    # Execute
    lengths = []
    for r, agg in enumerate(aggregates, start=1):
        update = algo.server_update(model, state, aggregate(r, _p(agg)))
        model, state = update.model, update.state
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
    assert [applied for _, _, applied in rounds] == [False, True]
    _close(rounds[0][1].reference["w"], [4.0, -2.0])
    _close(rounds[1][0]["w"], [6.0, 0.0])
    _close(rounds[1][1].reference["w"], [6.0, 0.0])


@pytest.mark.parametrize("prior", ["anchor", "delta"])
@pytest.mark.parametrize("step", ["closed_form", "gradient"])
def test_lam_zero_gives_exactly_the_aggregate(prior: str, step: str) -> None:
    """lam = 0: s = 0 and 2 lam eta_s = 0, so theta_r = A_r bit for bit even after warm-up."""
    # Prepare
    algo = _fedref(lam=0.0, prior=prior, step=step, rho=1)
    aggregates = [[0.1, -0.3], [1e-3, 7.7], [-2.2, 3.3], [0.123456, -9.87654]]
    # Execute
    rounds = _drive(algo, aggregates)
    # Assert
    for (model, _, _), agg in zip(rounds, aggregates, strict=True):
        np.testing.assert_array_equal(model["w"], _p(agg)["w"])


def test_server_update_does_not_mutate_the_old_state() -> None:
    """After a step the round-0 state (history, reference, last_loss) and theta_0 are as before."""
    # Prepare
    algo = _fedref(rho=1)
    model = _p(THETA0)
    state = algo.init_state(model)
    # Execute
    algo.server_update(model, state, aggregate(1, _p([4.0, -2.0])))
    # Assert
    assert len(state.history) == 1 and state.last_loss is None and state.prev_reference is None
    np.testing.assert_array_equal(state.history[0]["w"], _p(THETA0)["w"])
    np.testing.assert_array_equal(state.reference["w"], _p(THETA0)["w"])
    np.testing.assert_array_equal(model["w"], _p(THETA0)["w"])


def test_delta_prior_after_an_empty_first_round_takes_the_reference_as_unmoved() -> None:
    """rho = 1, prior = delta: if nobody reported in round 1 (server.py skips server_update), round 2 is past
    warm-up with prev_reference = None; the reference has not moved yet, so the prior mean is theta_1 = theta_0
    and theta_2 = (1 - s) A_1 + s theta_0 = 2/3 [4, -2] + 1/3 [1, 2] = [3, -2/3]."""
    # Prepare
    algo = _fedref(rho=1, prior="delta")
    model = _p(THETA0)
    # Execute
    update = algo.server_update(model, algo.init_state(model), aggregate(2, _p(AGGREGATES[0])))
    # Assert
    assert update.step_applied
    _close(update.model["w"], [3.0, -2.0 / 3.0])


# ----------------------------------------------------------------------------- params


@pytest.mark.parametrize(
    "kwargs", [{"mu": -0.1}, {"lam": -1e-9}, {"eta_s": 0.0}, {"eta_s": -1.0}, {"rho": 0}, {"mu": float("nan")}]
)
def test_params_reject_bad_values(kwargs: dict[str, float]) -> None:
    """mu >= 0, lam >= 0, eta_s > 0, rho >= 1 (NaN fails every comparison)."""
    # Prepare
    (key,) = kwargs
    # Execute / Assert
    with pytest.raises(ValueError, match=f"{key}="):
        FedRefParams(**kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"prior": "bogus"}, {"step": "newton"}, {"ref_weighting": "cubic"}, {"client_prior": "local"}]
)
def test_params_reject_unknown_choices(kwargs: dict[str, str]) -> None:
    """prior, step, ref_weighting and client_prior are Literals; built in Python, anything else runs a fallback."""
    # Prepare / Execute / Assert
    with pytest.raises(ValueError):
        FedRefParams(**kwargs)


def test_params_are_frozen() -> None:
    # Prepare
    params = FedRefParams(rho=2, lam=0.25)
    # Execute / Assert
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.lam = 1.0  # type: ignore[misc]


def test_config_builds_fedref_params_from_the_flat_section() -> None:
    """The flat YAML section's keys land in FedRefParams (ints accepted as floats)."""
    # Prepare / Execute
    cfg = build_config({"algorithm": {"name": "fedref", "rho": 2, "lam": 1, "prior": "delta"}})
    # Assert
    assert cfg.algorithm.params == FedRefParams(rho=2, lam=1.0, prior="delta")


def test_config_reports_a_bad_rho_as_a_user_error() -> None:
    # Prepare / Execute
    with pytest.raises(UserError) as info:
        build_config({"algorithm": {"name": "fedref", "rho": 0}})
    # Assert
    assert "algorithm.rho=0" in str(info.value) and ">= 1" in str(info.value)
