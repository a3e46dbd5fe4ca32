"""Tests for SCAFFOLD (Karimireddy et al. 2020, option II; BASELINES.md), every number derived by hand.

Client half. Model: torch.nn.Linear(1, 2, bias=False), so theta = W = [w_0, w_1] (a 2 x 1 weight), logits
z = W x. For one sample (x, y) the cross-entropy gradient is g(W) = (softmax(z) - e_y) x. With x = 1, y = 0:
  at W = [0, 0]:  z = [0, 0], p = [1/2, 1/2],             g = [-1/2, 1/2];
  at W = [0, -1]: z = [0, -1], p = [e/(1+e), 1/(1+e)],   g = [-q, q] with q = 1/(1+e).
Each local step is W <- W - lr (g(W) + c - c_k) (after_backward adds the correction before the step); option II then
sets c_k+ = c_k - c + (x - y) / (tau lr), tau = the number of minibatches, and uploads dc = c_k+ - c_k. With plain
SGD this makes c_k+ the mean of the uncorrected gradients along the path, which the derivations below confirm.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fedref_ray.aggregation import PartialSum, merge
from fedref_ray.algorithms import Scaffold, build_algorithm
from fedref_ray.algorithms.scaffold import ScaffoldHalf, ScaffoldParams, ScaffoldState
from fedref_ray.config import AlgorithmConfig, TrainingConfig, build_config
from fedref_ray.errors import UserError
from fedref_ray.training import sgd_epochs
from tests.algorithms.helpers import aggregate, context, linear, p32

Q = 1.0 / (1.0 + math.e)  # softmax([0, -1])[1]
ONE_SAMPLE_X, ONE_SAMPLE_Y = np.ones((1, 1), np.float32), np.array([0], np.int64)


def _c(*values: float) -> dict[str, np.ndarray]:
    """A server control variate for Linear(1, 2, bias=False): {"weight": 2 x 1}."""
    return {"weight": np.array(values, dtype=np.float32).reshape(2, 1)}


def _client(c: dict[str, np.ndarray], c_k: list[float] | None, lr: float = 1.0, weight=((0.0,), (0.0,))):
    """A Linear(1, 2) client whose context holds SCAFFOLD's broadcast {"c": c} and, if given, the state c_k."""
    algo = Scaffold()
    fm = linear([list(row) for row in weight])
    state = None if c_k is None else {"c_k": c_k}
    ctx = context(fm, broadcast=algo.broadcast(_c(0, 0), ScaffoldState(c)), state=state, lr=lr)
    return fm, algo.client(ctx)


def _train(fm, half, *, epochs: int, lr: float = 1.0, momentum: float = 0.0, x=ONE_SAMPLE_X, max_samples=None):
    cfg = TrainingConfig(local_epochs=epochs, batch_size=1, lr=lr, momentum=momentum)
    return sgd_epochs(
        fm.model, x, ONE_SAMPLE_Y, np.arange(1), cfg, np.random.default_rng(0), half=half, max_samples=max_samples
    )


def _close(actual, expected) -> None:
    np.testing.assert_allclose(np.asarray(actual, np.float64).reshape(-1), expected, rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- client half


def test_after_backward_adds_c_minus_c_k_to_every_parameter_gradient() -> None:
    """Linear(2, 2) with bias; flat layout (weight, bias). c = [[1, 2], [3, 4]], [5, 6]; c_k = [[.5, .5], [.5, .5]],
    [1, 1]; so c - c_k = [[.5, 1.5], [2.5, 3.5]], [4, 5]. Gradients of ones become [[1.5, 2.5], [3.5, 4.5]], [5, 6]."""
    # Prepare
    algo = Scaffold()
    fm = linear([[0.0, 0.0], [0.0, 0.0]], bias=[0.0, 0.0])
    c = {"weight": np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), "bias": np.array([5.0, 6.0], np.float32)}
    ctx = context(fm, broadcast={"c": c}, state={"c_k": [0.5, 0.5, 0.5, 0.5, 1.0, 1.0]})
    half = algo.client(ctx)
    fm.model.weight.grad = torch.ones(2, 2)
    fm.model.bias.grad = torch.ones(2)
    # Execute
    half.after_backward()
    # Assert
    assert isinstance(half, ScaffoldHalf)
    torch.testing.assert_close(fm.model.weight.grad, torch.tensor([[1.5, 2.5], [3.5, 4.5]]), rtol=0, atol=0)
    torch.testing.assert_close(fm.model.bias.grad, torch.tensor([5.0, 6.0]), rtol=0, atol=0)


def test_a_client_without_state_starts_from_c_k_zero() -> None:
    """No state yet: c_k = 0, so after_backward adds c itself: [[0.25], [-1]] + [[0.5], [0.75]] = [[0.75], [-0.25]]."""
    # Prepare
    fm, half = _client(_c(0.5, 0.75), None)
    fm.model.weight.grad = torch.tensor([[0.25], [-1.0]])
    # Execute
    half.after_backward()
    # Assert
    torch.testing.assert_close(fm.model.weight.grad, torch.tensor([[0.75], [-0.25]]), rtol=0, atol=0)


def test_two_corrected_steps_give_the_hand_computed_weights() -> None:
    """lr = 1, c = [0.25, 0.75], c_k = [-0.25, 0.25], so c - c_k = [0.5, 0.5]; x = 1, y = 0, 2 epochs of 1 sample.
    Step 1: W_0 = [0, 0], g = [-1/2, 1/2], corrected [0, 1]: W_1 = [0, -1].
    Step 2: g = [-q, q], corrected [0.5 - q, 0.5 + q]: W_2 = [q - 0.5, -1.5 - q] ~ [-0.2311, -1.7689]."""
    # Prepare
    fm, half = _client(_c(0.25, 0.75), [-0.25, 0.25])
    # Execute
    stats = _train(fm, half, epochs=2)
    # Assert
    assert stats.steps == 2
    _close(fm.model.weight.detach(), [Q - 0.5, -1.5 - Q])


def test_finish_gives_option_two_c_k_and_dc() -> None:
    """Same run: tau = 2, x - y = W_0 - W_2 = [0.5 - q, 1.5 + q];
    c_k+ = c_k - c + (x - y) / (tau lr) = [-0.5, -0.5] + [0.25 - q/2, 0.75 + q/2] = [-0.25 - q/2, 0.25 + q/2]
    (= the mean of the plain gradients (g_0 + g_1) / 2), and dc = c_k+ - c_k = [-q/2, q/2]."""
    # Prepare
    fm, half = _client(_c(0.25, 0.75), [-0.25, 0.25])
    stats = _train(fm, half, epochs=2)
    # Execute
    result = half.finish(fm.flat, stats.steps)
    # Assert
    assert set(result.tensors) == {"dc"} and set(result.state) == {"c_k"} and result.scalars == {}
    _close(result.state["c_k"], [-0.25 - Q / 2, 0.25 + Q / 2])
    _close(result.tensors["dc"], [-Q / 2, Q / 2])


def test_finish_for_a_new_client_counts_from_c_k_zero() -> None:
    """No state, c = [0.5, 0.5]: the correction c - 0 is the same [0.5, 0.5], so W_2 is as above and
    c_k+ = 0 - c + (x - y) / 2 = [-0.5, -0.5] + [0.25 - q/2, 0.75 + q/2] = [-0.25 - q/2, 0.25 + q/2]; dc = c_k+ - 0."""
    # Prepare
    fm, half = _client(_c(0.5, 0.5), None)
    stats = _train(fm, half, epochs=2)
    # Execute
    result = half.finish(fm.flat, stats.steps)
    # Assert
    _close(fm.model.weight.detach(), [Q - 0.5, -1.5 - Q])
    _close(result.state["c_k"], [-0.25 - Q / 2, 0.25 + Q / 2])
    _close(result.tensors["dc"], [-0.25 - Q / 2, 0.25 + Q / 2])


def test_finish_divides_by_steps_times_lr() -> None:
    """lr = 0.5, one step, c = [0.25, 0.75], c_k = [-0.25, 0.25]: g = [-1/2, 1/2], corrected [0, 1],
    W_1 = -0.5 [0, 1] = [0, -0.5]; c_k+ = [-0.5, -0.5] + [0, 0.5] / (1 * 0.5) = [-0.5, 0.5] (= g);
    dc = [-0.25, 0.25]."""
    # Prepare
    fm, half = _client(_c(0.25, 0.75), [-0.25, 0.25], lr=0.5)
    stats = _train(fm, half, epochs=1, lr=0.5)
    # Execute
    result = half.finish(fm.flat, stats.steps)
    # Assert
    assert stats.steps == 1
    _close(fm.model.weight.detach(), [0.0, -0.5])
    _close(result.state["c_k"], [-0.5, 0.5])
    _close(result.tensors["dc"], [-0.25, 0.25])


def test_momentum_acts_on_the_corrected_gradient() -> None:
    """x = 0 makes the cross-entropy gradient (p - e_y) x exactly 0, so the gradient is the correction
    d = c - c_k = [0.5, 0.5] alone. torch SGD momentum 0.5, lr 1: buf_1 = d, buf_2 = 0.5 d + d = 1.5 d,
    W_2 = -(1 + 1.5) d = [-1.25, -1.25]; c_k+ = [-0.5, -0.5] + [1.25, 1.25] / 2 = [0.125, 0.125];
    dc = [0.375, -0.125]."""
    # Prepare
    fm, half = _client(_c(0.25, 0.75), [-0.25, 0.25])
    stats = _train(fm, half, epochs=2, momentum=0.5, x=np.zeros((1, 1), np.float32))
    # Execute
    result = half.finish(fm.flat, stats.steps)
    # Assert
    _close(fm.model.weight.detach(), [-1.25, -1.25])
    _close(result.state["c_k"], [0.125, 0.125])
    _close(result.tensors["dc"], [0.375, -0.125])


def test_no_minibatch_keeps_c_k() -> None:
    """max_samples = 0: no step is taken (tau = 0), the model stays, c_k+ = c_k = [-0.25, 0.25] and dc = 0."""
    # Prepare
    fm, half = _client(_c(0.25, 0.75), [-0.25, 0.25])
    stats = _train(fm, half, epochs=1, max_samples=0)
    # Execute
    result = half.finish(fm.flat, stats.steps)
    # Assert
    assert stats.steps == 0
    _close(fm.model.weight.detach(), [0.0, 0.0])
    _close(result.state["c_k"], [-0.25, 0.25])
    _close(result.tensors["dc"], [0.0, 0.0])


def test_no_minibatch_for_a_new_client_keeps_c_k_zero() -> None:
    """No state and tau = 0: c_k+ = 0 and dc = 0 (not -c, as the formula with tau = 0 would be undefined)."""
    # Prepare
    fm, half = _client(_c(0.25, 0.75), None)
    # Execute
    result = half.finish(fm.flat, 0)
    # Assert
    _close(result.state["c_k"], [0.0, 0.0])
    _close(result.tensors["dc"], [0.0, 0.0])


# ----------------------------------------------------------------------------- server half


def test_init_state_is_zeros_and_is_broadcast() -> None:
    """c starts at 0 (float32, shaped like the model) and every client receives it as "c"."""
    # Prepare
    algo = Scaffold()
    model = {"w": np.array([1.0, 2.0], np.float32), "b": np.ones((2, 3), np.float32)}
    # Execute
    state = algo.init_state(model)
    sent = algo.broadcast(model, state)
    # Assert
    assert isinstance(state, ScaffoldState)
    np.testing.assert_array_equal(state.c["w"], [0.0, 0.0])
    assert state.c["b"].shape == (2, 3) and state.c["w"].dtype == np.float32 and not state.c["b"].any()
    assert set(sent) == {"c"} and sent["c"] is state.c


def test_server_moves_x_by_eta_g_times_the_mean_dy_and_c_by_the_sum_over_k() -> None:
    """x = [1, 2], mean dy = [0.5, -1] (aggregate.model = x + mean dy = [1.5, 1]), eta_g = 2:
    x <- [1, 2] + 2 [0.5, -1] = [2, 0]. c = [0.5, -0.25], sum dc = [1, 3] over 2 reporting clients of K = 4:
    c <- [0.5, -0.25] + [1, 3] / 4 = [0.75, 0.5] (dividing by the 2 reporters would give [1, 1.25])."""
    # Prepare
    algo = Scaffold(ScaffoldParams(eta_g=2.0))
    state = ScaffoldState(p32(0.5, -0.25))
    agg = aggregate(1, p32(1.5, 1.0), tensors={"dc": p32(1.0, 3.0)}, num_clients=2, total_clients=4)
    # Execute
    update = algo.server_update(p32(1.0, 2.0), state, agg)
    # Assert
    assert update.step_applied
    _close(update.model["w"], [2.0, 0.0])
    _close(update.state.c["w"], [0.75, 0.5])
    assert update.model["w"].dtype == np.float32 and update.state.c["w"].dtype == np.float32


def test_eta_g_one_takes_the_aggregate_and_reports_no_step() -> None:
    """eta_g = 1: x <- x + mean dy = aggregate.model bit for bit; c <- [0, 0] + [-2, 2] / 8 = [-0.25, 0.25]."""
    # Prepare
    algo = Scaffold()
    agg = aggregate(1, p32(0.1, -0.3), tensors={"dc": p32(-2.0, 2.0)}, num_clients=3, total_clients=8)
    # Execute
    update = algo.server_update(p32(1.0, 2.0), algo.init_state(p32(1.0, 2.0)), agg)
    # Assert
    assert not update.step_applied
    np.testing.assert_array_equal(update.model["w"], p32(0.1, -0.3)["w"])
    _close(update.state.c["w"], [-0.25, 0.25])


def test_server_update_does_not_mutate_the_old_state() -> None:
    # Prepare
    algo = Scaffold(ScaffoldParams(eta_g=2.0))
    state, model = ScaffoldState(p32(0.5, -0.25)), p32(1.0, 2.0)
    # Execute
    algo.server_update(model, state, aggregate(1, p32(1.5, 1.0), tensors={"dc": p32(1.0, 3.0)}, total_clients=4))
    # Assert
    np.testing.assert_array_equal(state.c["w"], [0.5, -0.25])
    np.testing.assert_array_equal(model["w"], [1.0, 2.0])


# ----------------------------------------------------------------------------- the reduction (aggregation.merge)
#
# Two workers, one client each; start x = [10, 20].
#   client A (worker 1): n = 1, dy = [2, 0],  dc = [1, 1],    loss 2.0
#   client B (worker 2): n = 3, dy = [-2, 4], dc = [0.5, -1], loss 1.0
# A PartialSum holds sum_k w_k t_k and sum_k w_k per upload; "dc" is summed (w = 1) whatever the weighting.


def _partials(weighted: bool) -> list[PartialSum]:
    """samples: w = n_k, so A's delta sum is 1 [2, 0] and B's 3 [-2, 4] = [-6, 12]; uniform: w = 1 for both."""
    a = PartialSum(
        sums={"delta": p32(2.0, 0.0), "dc": p32(1.0, 1.0)},
        weights={"delta": 1.0, "dc": 1.0},
        loss_sum=1 * 2.0,
        samples=1,
        states={0: {"c_k": np.array([1.0, 1.0], np.float32)}},
    )
    b = PartialSum(
        sums={"delta": p32(-6.0, 12.0) if weighted else p32(-2.0, 4.0), "dc": p32(0.5, -1.0)},
        weights={"delta": 3.0 if weighted else 1.0, "dc": 1.0},
        loss_sum=3 * 1.0,
        samples=3,
        states={1: {"c_k": np.array([0.5, -1.0], np.float32)}},
    )
    return [a, b]


def _weightings(algo: Scaffold) -> dict[str, str]:
    """What server.py passes to merge: the model delta by the algorithm's weighting, then its upload tensors."""
    return {"delta": algo.model_weighting, **algo.upload_tensors}


def test_algorithm_declares_its_uploads_and_state() -> None:
    """dc is reduced as a sum, c_k is client state, the model delta follows ScaffoldParams.weighting."""
    # Prepare / Execute / Assert
    assert Scaffold.upload_tensors == {"dc": "sum"} and Scaffold.client_state == ("c_k",)
    assert _weightings(Scaffold()) == {"delta": "samples", "dc": "sum"}
    assert _weightings(Scaffold(ScaffoldParams(weighting="uniform"))) == {"delta": "uniform", "dc": "sum"}


def test_merge_samples_weighting() -> None:
    """mean dy = (1 [2, 0] + 3 [-2, 4]) / 4 = [-4, 12] / 4 = [-1, 3], so aggregate.model = [9, 23];
    dc = [1, 1] + [0.5, -1] = [1.5, 0] (a sum, not a mean); mean loss = (1 * 2 + 3 * 1) / 4 = 1.25."""
    # Prepare
    algo = Scaffold()
    # Execute
    merged = merge(_partials(weighted=True), p32(10.0, 20.0), _weightings(algo))
    # Assert
    _close(merged.model["w"], [9.0, 23.0])
    _close(merged.tensors["dc"]["w"], [1.5, 0.0])
    assert merged.mean_loss == pytest.approx(1.25, rel=1e-12)
    assert set(merged.states) == {0, 1}
    _close(merged.states[1]["c_k"], [0.5, -1.0])


def test_merge_uniform_weighting() -> None:
    """ScaffoldParams(weighting="uniform"), the paper's plain mean: mean dy = ([2, 0] + [-2, 4]) / 2 = [0, 2],
    aggregate.model = [10, 22]; dc is still the sum [1.5, 0]."""
    # Prepare
    algo = Scaffold(ScaffoldParams(weighting="uniform"))
    # Execute
    merged = merge(_partials(weighted=False), p32(10.0, 20.0), _weightings(algo))
    # Assert
    _close(merged.model["w"], [10.0, 22.0])
    _close(merged.tensors["dc"]["w"], [1.5, 0.0])


def test_merged_round_through_the_server_half() -> None:
    """Samples weighting, eta_g = 0.5, K = 4, c = 0: x <- [10, 20] + 0.5 [-1, 3] = [9.5, 21.5];
    c <- 0 + [1.5, 0] / 4 = [0.375, 0]."""
    # Prepare
    algo = Scaffold(ScaffoldParams(eta_g=0.5))
    start = p32(10.0, 20.0)
    merged = merge(_partials(weighted=True), start, _weightings(algo))
    agg = aggregate(1, merged.model, merged.mean_loss, merged.tensors, num_clients=2, total_clients=4)
    # Execute
    update = algo.server_update(start, algo.init_state(start), agg)
    # Assert
    _close(update.model["w"], [9.5, 21.5])
    _close(update.state.c["w"], [0.375, 0.0])


# ----------------------------------------------------------------------------- params and config


@pytest.mark.parametrize("eta_g", [0.0, -1.0, float("nan")])
def test_params_reject_a_non_positive_eta_g(eta_g: float) -> None:
    # Prepare / Execute / Assert
    with pytest.raises(ValueError, match="eta_g="):
        ScaffoldParams(eta_g=eta_g)


def test_params_reject_an_unknown_weighting() -> None:
    """weighting is samples or uniform; "sum" built in Python would make the model delta a sum, not a mean."""
    # Prepare / Execute / Assert
    with pytest.raises(ValueError):
        ScaffoldParams(weighting="sum")  # type: ignore[arg-type]


def test_config_builds_scaffold() -> None:
    """The flat section {name: scaffold, eta_g: 2, weighting: uniform} builds Scaffold with those params."""
    # Prepare
    cfg = build_config({"algorithm": {"name": "scaffold", "eta_g": 2, "weighting": "uniform"}})
    # Execute
    algo = build_algorithm(cfg.algorithm)
    # Assert
    assert isinstance(algo, Scaffold)
    assert algo.params == ScaffoldParams(eta_g=2.0, weighting="uniform") and algo.model_weighting == "uniform"


def test_config_rejects_an_unknown_weighting() -> None:
    # Prepare / Execute
    with pytest.raises(UserError) as info:
        build_config({"algorithm": {"name": "scaffold", "weighting": "sum"}})
    # Assert
    assert "algorithm.weighting='sum'" in str(info.value) and "samples, uniform" in str(info.value)


def test_algorithm_config_rejects_a_bad_eta_g() -> None:
    # Prepare / Execute
    with pytest.raises(UserError) as info:
        build_config({"algorithm": {"name": "scaffold", "eta_g": 0}})
    # Assert
    assert "algorithm.eta_g=0.0" in str(info.value)
    assert AlgorithmConfig(name="scaffold").params == ScaffoldParams()
