"""Tests for FedDyn (Acar et al. 2021, Algorithm 1; BASELINES.md), every number derived by hand.

Client half. Model: torch.nn.Linear(1, 2, bias=False), so theta = W = [w_0, w_1], logits z = W x. The local objective
is F_k(W) - <g_k, W> + (alpha/2) ||W - x0||^2 (x0 = the round's global model, `start`), with gradient
grad F_k(W) - g_k + alpha (W - x0). The cross-entropy gradient of one sample (x, y) is (softmax(z) - e_y) x, so an
input x = 0 makes it vanish and leaves -g_k + alpha (W - x0) alone; with x = 1, y = 0 at W = [0, 0] it is [-1/2, 1/2].
After training g_k <- g_k - alpha (W - x0).

Server half: h <- h - (alpha / K) sum_{k in S} (y_k - x0), x <- mean_{k in S} y_k - h / alpha, K = total clients.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from fedref_ray.aggregation import PartialSum, merge
from fedref_ray.algorithms import BUILTIN_ALGORITHMS, FedDyn, build_algorithm
from fedref_ray.algorithms.feddyn import FedDynHalf, FedDynParams, FedDynState
from fedref_ray.config import TrainingConfig, build_config
from fedref_ray.errors import UserError
from fedref_ray.flat_model import FlatModel
from fedref_ray.training import sgd_epochs
from tests.algorithms.helpers import aggregate, context, linear, p32

ZERO_X, ONE_X, LABEL_0 = np.zeros((1, 1), np.float32), np.ones((1, 1), np.float32), np.array([0], np.int64)


def _client(weight, g_k=None, alpha: float = 0.1, weighting: str = "uniform"):
    algo = FedDyn(FedDynParams(alpha=alpha, weighting=weighting))
    fm = linear([[w] for w in weight])
    ctx = context(fm, state=None if g_k is None else {"g_k": g_k})
    return fm, algo.client(ctx)


def _train(fm, half, *, epochs: int, x=ZERO_X, lr: float = 1.0):
    cfg = TrainingConfig(local_epochs=epochs, batch_size=1, lr=lr)
    return sgd_epochs(fm.model, x, LABEL_0, np.arange(1), cfg, np.random.default_rng(0), half=half)


def _close(actual, expected) -> None:
    np.testing.assert_allclose(np.asarray(actual, np.float64).reshape(-1), expected, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- client half


def test_loss_term_value_and_gradient() -> None:
    """x0 = [1, 2], W moved to [2, 0], g_k = [0.5, -1], alpha = 0.1:
    value = alpha/2 ||W - x0||^2 - <g_k, W> = 0.05 (1 + 4) - (1 + 0) = -0.75 (a flipped linear sign gives 1.25);
    gradient = alpha (W - x0) - g_k = [0.1, -0.2] - [0.5, -1] = [-0.4, 0.8]."""
    # Prepare
    fm, half = _client([1.0, 2.0], g_k=[0.5, -1.0])
    with torch.no_grad():
        fm.model.weight.copy_(torch.tensor([[2.0], [0.0]]))
    # Execute
    value = half.loss_term(None, ZERO_X, LABEL_0)
    value.backward()
    # Assert
    assert isinstance(half, FedDynHalf)
    assert float(value.detach()) == pytest.approx(-0.75, abs=1e-6)
    _close(fm.model.weight.grad, [-0.4, 0.8])


def test_two_steps_then_the_state_update() -> None:
    """x = 0 (no cross-entropy gradient), lr = 1, x0 = [1, 2], g_k = [0.5, -1], alpha = 0.1.
    Step 1 at W = x0: gradient -g_k = [-0.5, 1], W_1 = [1.5, 1].
    Step 2: gradient 0.1 [0.5, -1] - [0.5, -1] = [-0.45, 0.9], W_2 = [1.95, 0.1].
    g_k <- [0.5, -1] - 0.1 (W_2 - x0) = [0.5, -1] - 0.1 [0.95, -1.9] = [0.405, -0.81].
    Uniform weighting uploads nothing besides the model."""
    # Prepare
    fm, half = _client([1.0, 2.0], g_k=[0.5, -1.0])
    # Execute
    stats = _train(fm, half, epochs=2)
    result = half.finish(fm.flat, stats.steps)
    # Assert
    _close(fm.model.weight.detach(), [1.95, 0.1])
    assert result.tensors == {} and set(result.state) == {"g_k"}
    _close(result.state["g_k"], [0.405, -0.81])


def test_a_new_client_starts_from_g_k_zero() -> None:
    """No state: g_k = 0. x = 1, y = 0, x0 = W_0 = [0, 0], lr = 1: the regulariser's gradient is 0 at x0, the
    cross-entropy's is [-1/2, 1/2], so W_1 = [0.5, -0.5]; g_k <- 0 - 0.1 [0.5, -0.5] = [-0.05, 0.05]."""
    # Prepare
    fm, half = _client([0.0, 0.0])
    # Execute
    stats = _train(fm, half, epochs=1, x=ONE_X)
    result = half.finish(fm.flat, stats.steps)
    # Assert
    _close(fm.model.weight.detach(), [0.5, -0.5])
    _close(result.state["g_k"], [-0.05, 0.05])


def test_samples_weighting_uploads_the_plain_update_dy() -> None:
    """weighting = samples: the same run as above also uploads dy = W_2 - x0 = [0.95, -1.9] (reduced as a sum)."""
    # Prepare
    fm, half = _client([1.0, 2.0], g_k=[0.5, -1.0], weighting="samples")
    # Execute
    stats = _train(fm, half, epochs=2)
    result = half.finish(fm.flat, stats.steps)
    # Assert
    assert set(result.tensors) == {"dy"}
    _close(result.tensors["dy"], [0.95, -1.9])
    _close(result.state["g_k"], [0.405, -0.81])


def test_g_k_is_not_updated_on_batchnorm_statistics() -> None:
    """BatchNorm1d(1): flat layout [weight, bias, running_mean, running_var] = [1, 0, 0, 1]. A trained vector
    [2, 3, 5, 7] gives g_k = 0 - 0.5 [1, 3, 0, 0] = [-0.5, -1.5, 0, 0]: the statistics have no gradient term."""
    # Prepare
    algo = FedDyn(FedDynParams(alpha=0.5))
    fm = FlatModel(torch.nn.BatchNorm1d(1))
    half = algo.client(context(fm))
    # Execute
    result = half.finish(torch.tensor([2.0, 3.0, 5.0, 7.0]), 1)
    # Assert
    assert fm.names == ["weight", "bias", "running_mean", "running_var"]
    _close(result.state["g_k"], [-0.5, -1.5, 0.0, 0.0])


# ----------------------------------------------------------------------------- server half


def test_init_state_is_zeros_and_nothing_is_broadcast() -> None:
    # Prepare
    algo = FedDyn()
    model = {"w": np.array([1.0, 2.0], np.float32), "b": np.ones((2, 3), np.float32)}
    # Execute
    state = algo.init_state(model)
    # Assert
    assert isinstance(state, FedDynState) and algo.broadcast(model, state) == {}
    assert state.h["b"].shape == (2, 3) and state.h["w"].dtype == np.float32 and not state.h["b"].any()


def test_server_uniform_derives_the_sum_from_the_mean() -> None:
    """x0 = [1, 2], mean y = [2, 1] over 2 reporters of K = 4, h = [0.1, 0.2], alpha = 0.5.
    sum (y_k - x0) = 2 ([2, 1] - [1, 2]) = [2, -2]; h <- [0.1, 0.2] - (0.5 / 4) [2, -2] = [-0.15, 0.45]
    (1/num_clients instead of 1/K would give [-0.4, 0.7]; the mean instead of the sum [-0.025, 0.325]);
    x <- [2, 1] - h / 0.5 = [2, 1] - [-0.3, 0.9] = [2.3, 0.1]."""
    # Prepare
    algo = FedDyn(FedDynParams(alpha=0.5))
    agg = aggregate(1, p32(2.0, 1.0), num_clients=2, total_clients=4)
    # Execute
    update = algo.server_update(p32(1.0, 2.0), FedDynState(p32(0.1, 0.2)), agg)
    # Assert
    assert update.step_applied
    _close(update.state.h["w"], [-0.15, 0.45])
    _close(update.model["w"], [2.3, 0.1])
    assert update.model["w"].dtype == np.float32 and update.state.h["w"].dtype == np.float32


def test_server_samples_takes_the_sum_from_dy() -> None:
    """weighting = samples: weighted mean y = [2, 1], sum dy = [3, -1] (not 2 (mean - x0)), K = 4, alpha = 0.5:
    h <- [0.1, 0.2] - 0.125 [3, -1] = [-0.275, 0.325]; x <- [2, 1] - [-0.55, 0.65] = [2.55, 0.35]."""
    # Prepare
    algo = FedDyn(FedDynParams(alpha=0.5, weighting="samples"))
    agg = aggregate(1, p32(2.0, 1.0), tensors={"dy": p32(3.0, -1.0)}, num_clients=2, total_clients=4)
    # Execute
    update = algo.server_update(p32(1.0, 2.0), FedDynState(p32(0.1, 0.2)), agg)
    # Assert
    _close(update.state.h["w"], [-0.275, 0.325])
    _close(update.model["w"], [2.55, 0.35])


def test_server_averages_batchnorm_statistics_without_correction() -> None:
    """A key named *.running_var takes the mean [0.25] as it is (h there stays 0); "w" is corrected as above."""
    # Prepare
    algo = FedDyn(FedDynParams(alpha=0.5))
    model = {"w": np.array([1.0, 2.0], np.float32), "bn.running_var": np.array([1.0], np.float32)}
    mean = {"w": np.array([2.0, 1.0], np.float32), "bn.running_var": np.array([0.25], np.float32)}
    state = FedDynState({"w": np.array([0.1, 0.2], np.float32), "bn.running_var": np.zeros(1, np.float32)})
    # Execute
    update = algo.server_update(model, state, aggregate(1, mean, num_clients=2, total_clients=4))
    # Assert
    _close(update.model["bn.running_var"], [0.25])
    _close(update.state.h["bn.running_var"], [0.0])
    _close(update.model["w"], [2.3, 0.1])


def test_server_update_does_not_mutate_the_old_state() -> None:
    # Prepare
    algo = FedDyn(FedDynParams(alpha=0.5))
    state, model = FedDynState(p32(0.1, 0.2)), p32(1.0, 2.0)
    # Execute
    algo.server_update(model, state, aggregate(1, p32(2.0, 1.0), num_clients=2, total_clients=4))
    # Assert
    np.testing.assert_array_equal(state.h["w"], np.array([0.1, 0.2], np.float32))
    np.testing.assert_array_equal(model["w"], [1.0, 2.0])


def test_h_is_the_mean_of_all_clients_g_k() -> None:
    """The invariant behind the rule: with h_0 = 0 and g_k = 0 at first, h = (1/K) sum over ALL K clients of g_k.
    K = 3, alpha = 0.5, x0 = [0, 0]; clients 0 and 1 report y = [1, 0] and [0, 2] (client 2 does not):
    g_0 = -0.5 [1, 0], g_1 = -0.5 [0, 2], g_2 = 0, so (1/3) sum g = [-1/6, -1/3]; the server's h from the uniform
    mean [0.5, 1] is -(0.5 / 3) 2 [0.5, 1] = [-1/6, -1/3] too."""
    # Prepare
    algo = FedDyn(FedDynParams(alpha=0.5))
    gs = []
    for y in ([1.0], [0.0]), ([0.0], [2.0]):
        fm = linear([[0.0], [0.0]])
        half = algo.client(context(fm))
        gs.append(half.finish(torch.tensor([y[0][0], y[1][0]]), 1).state["g_k"].numpy())
    # Execute
    update = algo.server_update(
        {"weight": np.zeros((2, 1), np.float32)},
        algo.init_state({"weight": np.zeros((2, 1), np.float32)}),
        aggregate(1, {"weight": np.array([[0.5], [1.0]], np.float32)}, num_clients=2, total_clients=3),
    )
    # Assert
    _close(sum(gs) / 3, [-1 / 6, -1 / 3])
    _close(update.state.h["weight"], [-1 / 6, -1 / 3])


# ----------------------------------------------------------------------------- the reduction (aggregation.merge)
#
# Two workers, one client each; start x0 = [10, 20]. Client A: n = 1, update [2, 0]; client B: n = 3, update [-2, 4].


def _partials(weighting: str) -> list[PartialSum]:
    """samples: delta sums 1 [2, 0] and 3 [-2, 4] = [-6, 12] with weights 1 and 3, and dy (w = 1) = the updates;
    uniform: delta sums [2, 0] and [-2, 4] with weights 1 and 1, no dy."""
    samples = weighting == "samples"
    a = PartialSum(
        sums={"delta": p32(2.0, 0.0), **({"dy": p32(2.0, 0.0)} if samples else {})},
        weights={"delta": 1.0, **({"dy": 1.0} if samples else {})},
        loss_sum=2.0,
        samples=1,
    )
    b = PartialSum(
        sums={"delta": p32(-6.0, 12.0) if samples else p32(-2.0, 4.0), **({"dy": p32(-2.0, 4.0)} if samples else {})},
        weights={"delta": 3.0 if samples else 1.0, **({"dy": 1.0} if samples else {})},
        loss_sum=3.0,
        samples=3,
    )
    return [a, b]


def _round(algo: FedDyn, weighting: str):
    start = p32(10.0, 20.0)
    merged = merge(_partials(weighting), start, {"delta": algo.model_weighting, **algo.upload_tensors})
    agg = aggregate(1, merged.model, merged.mean_loss, merged.tensors, num_clients=2, total_clients=4)
    return merged, algo.server_update(start, algo.init_state(start), agg)


def test_algorithm_declares_its_uploads_and_state() -> None:
    # Prepare / Execute / Assert
    assert BUILTIN_ALGORITHMS["feddyn"] is FedDyn and FedDyn.coefficients == ("alpha",)
    assert FedDyn.client_state == ("g_k",)
    assert FedDyn().model_weighting == "uniform" and FedDyn().upload_tensors == {}
    samples = FedDyn(FedDynParams(weighting="samples"))
    assert samples.model_weighting == "samples" and samples.upload_tensors == {"dy": "sum"}


def test_merge_and_server_uniform() -> None:
    """Uniform: mean update ([2, 0] + [-2, 4]) / 2 = [0, 2], aggregate.model = [10, 22]; alpha = 0.01, K = 4:
    sum = 2 [0, 2] = [0, 4], h = -(0.01 / 4) [0, 4] = [0, -0.01], x = [10, 22] - h / 0.01 = [10, 23]."""
    # Prepare
    algo = FedDyn()
    # Execute
    merged, update = _round(algo, "uniform")
    # Assert
    _close(merged.model["w"], [10.0, 22.0])
    _close(update.state.h["w"], [0.0, -0.01])
    _close(update.model["w"], [10.0, 23.0])


def test_merge_and_server_samples() -> None:
    """Samples: mean update (1 [2, 0] + 3 [-2, 4]) / 4 = [-1, 3], aggregate.model = [9, 23]; dy = [2, 0] + [-2, 4]
    = [0, 4] (a sum); alpha = 1, K = 4: h = -(1/4) [0, 4] = [0, -1], x = [9, 23] - [0, -1] = [9, 24]."""
    # Prepare
    algo = FedDyn(FedDynParams(alpha=1.0, weighting="samples"))
    # Execute
    merged, update = _round(algo, "samples")
    # Assert
    _close(merged.model["w"], [9.0, 23.0])
    _close(merged.tensors["dy"]["w"], [0.0, 4.0])
    _close(update.state.h["w"], [0.0, -1.0])
    _close(update.model["w"], [9.0, 24.0])


# ----------------------------------------------------------------------------- params, config, imports


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan")])
def test_params_reject_a_non_positive_alpha(alpha: float) -> None:
    # Prepare / Execute / Assert
    with pytest.raises(ValueError, match="alpha="):
        FedDynParams(alpha=alpha)


def test_config_builds_feddyn_and_rejects_a_bad_weighting() -> None:
    # Prepare
    cfg = build_config({"algorithm": {"name": "feddyn", "alpha": 0.1, "weighting": "samples"}})
    # Execute
    algo = build_algorithm(cfg.algorithm)
    # Assert
    assert isinstance(algo, FedDyn) and algo.params == FedDynParams(alpha=0.1, weighting="samples")
    with pytest.raises(UserError, match="algorithm.weighting='sum'"):
        build_config({"algorithm": {"name": "feddyn", "weighting": "sum"}})


def test_the_server_half_imports_without_torch() -> None:
    # Prepare / Execute
    code = "import sys, fedref_ray.algorithms.feddyn; assert 'torch' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    # Assert
    assert proc.returncode == 0, proc.stderr


# ----------------------------------------------------------------------------- a short run


def test_a_local_run_finishes_and_differs_from_fedavg(tmp_path) -> None:
    """digits, mlp (16 hidden), 8 clients, 4 a round, 3 rounds, local engine: FedDyn ends elsewhere than FedAvg on
    the same seed (same clients, same shuffles), and (uniform weighting) sends exactly FedAvg's bytes."""
    import fedref_ray

    # Prepare
    common = ["data.name=digits", "model.name=mlp", "model.hidden=16", "engine.name=local",
              "partition.num_clients=8", "run.clients_per_round=4", "run.rounds=3"]  # fmt: skip
    # Execute
    dyn = fedref_ray.run(None, [*common, "algorithm.name=feddyn", f"run.results_dir={tmp_path / 'dyn'}"])
    avg = fedref_ray.run(None, [*common, "algorithm.name=fedavg", f"run.results_dir={tmp_path / 'avg'}"])
    # Assert
    assert len(dyn.rounds) == 3 and np.isfinite(dyn.rounds["test_loss"]).all()
    assert max(float(np.max(np.abs(dyn.params[k] - avg.params[k]))) for k in avg.params) > 1e-4
    assert list(dyn.rounds["bytes_up"]) == list(avg.rounds["bytes_up"])
    assert list(dyn.rounds["bytes_down"]) == list(avg.rounds["bytes_down"])
