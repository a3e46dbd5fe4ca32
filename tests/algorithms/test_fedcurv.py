"""Tests for FedCurv (Shoham et al. 2019; BASELINES.md), every number derived by hand.

The Fisher. Model: torch.nn.Linear(2, 2, bias=False), W (2 x 2, flat row-major [w00, w01, w10, w11]), logits z = W x.
The gradient of log p(y | x) is -(softmax(z) - e_y) x^T. With two EQUAL rows of W both logits are equal, so
softmax(z) = [1/2, 1/2] exactly for every x, and the per-sample squared gradient is (1/4) [x^2; x^2] (row-wise):
  A: x = [1, 0], y = 0  and  B: x = [1, 0], y = 1:  squares [[1/4, 0], [1/4, 0]] each;
  C: x = [0, 2], y = 0  and  D: x = [0, 2], y = 1:  squares [[0, 1], [0, 1]] each.
So u = mean over A..D = [1/8, 1/2, 1/8, 1/2]; over A, B only: [1/4, 0, 1/4, 0]. The minibatch gradient of A..D is
exactly 0 (the label pairs cancel), so training does not move W, and "the squared minibatch gradient" would be 0.

The penalty. Model: torch.nn.Linear(1, 2, bias=False), W = [w0, w1]. Another client j sent u_j = [2, 0.5] at
y_j = [0.5, -2] (v_j = [1, -1]); this client k sent u_k' = [1, 0.5] at y_k' = [0.5, -2] (v_k' = [0.5, -1]) in round 2.
So U = [3, 1], V = [1.5, -2]. Client k's term is lam * sum_{j != k} u_j (W - y_j)^2 = lam ((U - u_k') W^2
- 2 (V - v_k') W) + lam sum u_j y_j^2; the loss term returns it without the constant.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from fedref_ray.aggregation import PartialSum, merge
from fedref_ray.algorithms import BUILTIN_ALGORITHMS, FedCurv, build_algorithm
from fedref_ray.algorithms.fedcurv import FedCurvHalf, FedCurvParams, FedCurvState
from fedref_ray.config import TrainingConfig, build_config
from fedref_ray.errors import UserError
from fedref_ray.training import sgd_epochs
from tests.algorithms.helpers import aggregate, context, linear, p32

FOUR_X = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 2.0]], np.float32)
FOUR_Y = np.array([0, 1, 0, 1], np.int64)
OWN_ROUND_2 = {"u_k": [1.0, 0.5], "v_k": [0.5, -1.0], "sent_round": [2.0, 2.0]}


def _w(*values: float) -> dict[str, np.ndarray]:
    """Params of Linear(1, 2, bias=False): {"weight": 2 x 1}."""
    return {"weight": np.array(values, dtype=np.float32).reshape(2, 1)}


def _penalised(state=None, round_: int = 3, lam: float = 0.5, weight=(1.0, 2.0)):
    """A Linear(1, 2) client at W = `weight` that receives U = [3, 1], V = [1.5, -2]."""
    algo = FedCurv(FedCurvParams(lam=lam))
    fm = linear([[w] for w in weight])
    sent = algo.broadcast(_w(0, 0), FedCurvState(_w(3.0, 1.0), _w(1.5, -2.0)))
    return fm, algo.client(context(fm, broadcast=sent, state=state, round_=round_, num_samples=1))


def _fisher_client(fisher_samples: int = 1024, weight=((1.0, 2.0), (1.0, 2.0)), round_: int = 1):
    algo = FedCurv(FedCurvParams(fisher_samples=fisher_samples))
    fm = linear([list(r) for r in weight])
    return fm, algo.client(context(fm, round_=round_, num_samples=4))


def _train_four(fm, half, epochs: int = 2, max_samples=None):
    cfg = TrainingConfig(local_epochs=epochs, batch_size=4, lr=1.0)
    return sgd_epochs(
        fm.model, FOUR_X, FOUR_Y, np.arange(4), cfg, np.random.default_rng(0), half=half, max_samples=max_samples
    )


def _close(actual, expected) -> None:
    np.testing.assert_allclose(np.asarray(actual, np.float64).reshape(-1), expected, rtol=1e-6, atol=1e-7)


def _penalty(fm, half) -> tuple[float, torch.Tensor]:
    value = half.loss_term(None, torch.zeros(1, 1), torch.zeros(1, dtype=torch.long))
    value.backward()
    return float(value.detach()), fm.model.weight.grad.reshape(-1)


# ----------------------------------------------------------------------------- client half: the penalty


def test_penalty_without_own_terms() -> None:
    """A client with no state: lam = 0.5, W = [1, 2], U = [3, 1], V = [1.5, -2]:
    value = 0.5 (3 * 1 - 2 * 1.5 * 1 + 1 * 4 - 2 * (-2) * 2) = 0.5 (3 - 3 + 4 + 8) = 6;
    gradient = 2 lam (U W - V) = [3 - 1.5, 2 + 2] = [1.5, 4]."""
    # Prepare
    fm, half = _penalised()
    # Execute
    value, grad = _penalty(fm, half)
    # Assert
    assert isinstance(half, FedCurvHalf)
    assert value == pytest.approx(6.0, abs=1e-6)
    _close(grad, [1.5, 4.0])


def test_penalty_subtracts_own_terms_from_the_previous_round() -> None:
    """Round 3, own terms sent in round 2: A = U - u_k' = [2, 0.5], B = V - v_k' = [1, -1];
    value = 0.5 (2 - 2 + 0.5 * 4 + 4) = 3 (= 0.5 sum u_j (W - y_j)^2 = 0.5 (2 * 0.25 + 0.5 * 16) = 4.25 less the
    constant 0.5 (2 * 0.25 + 0.5 * 4) = 1.25); gradient = 2 lam u_j (W - y_j) = [2 * 0.5, 0.5 * 4] = [1, 2]."""
    # Prepare
    fm, half = _penalised(state=OWN_ROUND_2, round_=3)
    # Execute
    value, grad = _penalty(fm, half)
    # Assert
    assert value == pytest.approx(3.0, abs=1e-6)
    _close(grad, [1.0, 2.0])


def test_penalty_keeps_own_terms_from_an_older_round() -> None:
    """Round 4, own terms from round 2: they are not in U and V (built from round 3), so nothing is subtracted:
    the values of the client without state, 6 and [1.5, 4]."""
    # Prepare
    fm, half = _penalised(state=OWN_ROUND_2, round_=4)
    # Execute
    value, grad = _penalty(fm, half)
    # Assert
    assert value == pytest.approx(6.0, abs=1e-6)
    _close(grad, [1.5, 4.0])


def test_own_fisher_larger_than_u_is_clipped_at_zero() -> None:
    """u_k' = [4, 0.5] > U's [3, ...] in the first entry (only rounding can do that): A = [max(3 - 4, 0), 0.5] =
    [0, 0.5], B = V - v_k' = [1, -1]; gradient = 2 lam (A W - B) = [0 - 1, 1 + 1] = [-1, 2]."""
    # Prepare
    fm, half = _penalised(state={**OWN_ROUND_2, "u_k": [4.0, 0.5]}, round_=3)
    # Execute
    _, grad = _penalty(fm, half)
    # Assert
    _close(grad, [-1.0, 2.0])


def test_a_penalised_step() -> None:
    """x = 0 (no cross-entropy gradient), lr = 0.5, own terms subtracted: W_1 = [1, 2] - 0.5 [1, 2] = [0.5, 1]."""
    # Prepare
    fm, half = _penalised(state=OWN_ROUND_2, round_=3)
    cfg = TrainingConfig(local_epochs=1, batch_size=1, lr=0.5)
    # Execute
    sgd_epochs(fm.model, np.zeros((1, 1), np.float32), np.array([0]), np.arange(1), cfg, np.random.default_rng(0),
               half=half)  # fmt: skip
    # Assert
    _close(fm.model.weight.detach(), [0.5, 1.0])


def test_round_one_has_no_penalty_and_nothing_extra_is_sent() -> None:
    """Before anyone reported the server has no U, V: the broadcast is empty and the loss term None."""
    # Prepare
    algo = FedCurv()
    state = algo.init_state(_w(0, 0))
    fm = linear([[1.0], [2.0]])
    half = algo.client(context(fm, broadcast=algo.broadcast(_w(0, 0), state), round_=1))
    # Execute
    value = half.loss_term(None, torch.zeros(1, 1), torch.zeros(1, dtype=torch.long))
    # Assert
    assert algo.broadcast(_w(0, 0), state) == {} and value is None


def test_lam_zero_adds_no_term() -> None:
    # Prepare
    fm, half = _penalised(lam=0.0)
    # Execute / Assert
    assert half.loss_term(None, torch.zeros(1, 1), torch.zeros(1, dtype=torch.long)) is None


# ----------------------------------------------------------------------------- client half: the Fisher and uploads


def test_finish_uploads_the_per_sample_fisher_and_v() -> None:
    """W = [[1, 2], [1, 2]], samples A..D, batch 4, 2 epochs: W does not move (zero minibatch gradient);
    u = [1/8, 1/2, 1/8, 1/2] (the squared minibatch gradient would be 0), v = u * W = [1/8, 1, 1/8, 1].
    The state keeps u, v and the round (1) they were sent in. Only the first epoch's n_k = 4 samples are kept
    (epoch 2 repeats them: 8 would give the same mean at twice the cost)."""
    # Prepare
    fm, half = _fisher_client()
    stats = _train_four(fm, half)
    # Execute
    kept = sum(len(y) for _, y in half.kept)
    result = half.finish(fm.flat, stats.steps)
    # Assert
    assert stats.steps == 2 and kept == 4
    _close(fm.flat, [1.0, 2.0, 1.0, 2.0])
    assert set(result.tensors) == {"u", "v"} and set(result.state) == {"u_k", "v_k", "sent_round"}
    _close(result.tensors["u"], [1 / 8, 1 / 2, 1 / 8, 1 / 2])
    _close(result.tensors["v"], [1 / 8, 1.0, 1 / 8, 1.0])
    _close(result.state["u_k"], [1 / 8, 1 / 2, 1 / 8, 1 / 2])
    _close(result.state["v_k"], [1 / 8, 1.0, 1 / 8, 1.0])
    _close(result.state["sent_round"], [1.0] * 4)


def test_fisher_samples_caps_the_samples() -> None:
    """fisher_samples = 2: the first two samples trained on (the sorted batch: A, B): u = [1/4, 0, 1/4, 0]."""
    # Prepare
    fm, half = _fisher_client(fisher_samples=2)
    stats = _train_four(fm, half)
    # Execute
    result = half.finish(fm.flat, stats.steps)
    # Assert
    _close(result.tensors["u"], [1 / 4, 0.0, 1 / 4, 0.0])


def test_the_fisher_is_taken_at_the_trained_model() -> None:
    """The client starts at W = 0 and has seen sample A; its trained weights are W = [[2, 0], [0, 0]]. For A
    (x = [1, 0], y = 0) the logits are [2, 0], q = p(y=1) = 1 / (1 + e^2), and the gradient of log p(0 | x) is
    [[q, 0], [-q, 0]]: u = [q^2, 0, q^2, 0] ~ [0.0142, 0, 0.0142, 0] (it would be 1/4 at the start W = 0),
    v = u * W = [2 q^2, 0, 0, 0]."""
    # Prepare
    fm, half = _fisher_client(weight=((0.0, 0.0), (0.0, 0.0)))
    half.loss_term(None, torch.tensor(FOUR_X[:1]), torch.tensor(FOUR_Y[:1]))
    with torch.no_grad():
        fm.model.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 0.0]]))
    q = 1.0 / (1.0 + np.exp(2.0))
    # Execute
    result = half.finish(fm.flat, 1)
    # Assert
    _close(result.tensors["u"], [q * q, 0.0, q * q, 0.0])
    _close(result.tensors["v"], [2 * q * q, 0.0, 0.0, 0.0])


def test_no_minibatch_uploads_zeros() -> None:
    """max_samples = 0: no step, no sample seen, u = v = 0."""
    # Prepare
    fm, half = _fisher_client()
    stats = _train_four(fm, half, epochs=1, max_samples=0)
    # Execute
    result = half.finish(fm.flat, stats.steps)
    # Assert
    assert stats.steps == 0
    _close(result.tensors["u"], [0.0] * 4)
    _close(result.tensors["v"], [0.0] * 4)


# ----------------------------------------------------------------------------- server half


def test_server_keeps_the_last_rounds_sums_and_broadcasts_them() -> None:
    """The aggregate's u = [3, 1], v = [1.5, -2] replace the old U = [100, 100], V = [7, 7] (not added to them);
    the model is the aggregate's (FedAvg's mean) and both sums go out next round."""
    # Prepare
    algo = FedCurv()
    old = FedCurvState(p32(100.0, 100.0), p32(7.0, 7.0))
    agg = aggregate(2, p32(0.5, -0.5), tensors={"u": p32(3.0, 1.0), "v": p32(1.5, -2.0)}, num_clients=2)
    # Execute
    update = algo.server_update(p32(0.0, 0.0), old, agg)
    sent = algo.broadcast(update.model, update.state)
    # Assert
    assert not update.step_applied
    np.testing.assert_array_equal(update.model["w"], p32(0.5, -0.5)["w"])
    _close(update.state.U["w"], [3.0, 1.0])
    _close(update.state.V["w"], [1.5, -2.0])
    assert set(sent) == {"U", "V"}
    _close(sent["U"]["w"], [3.0, 1.0])
    np.testing.assert_array_equal(old.U["w"], [100.0, 100.0])


def test_merge_sums_u_and_v_and_the_server_keeps_them() -> None:
    """Two workers: A (n = 1) update [2, 0], u [1, 0.5], v [0.5, -1]; B (n = 3) update [-2, 4], u [2, 0.5], v [1, -1].
    Start [10, 20]: model = [10, 20] + (1 [2, 0] + 3 [-2, 4]) / 4 = [9, 23]; U = [3, 1], V = [1.5, -2] (sums)."""
    # Prepare
    algo = FedCurv()
    a = PartialSum(sums={"delta": p32(2.0, 0.0), "u": p32(1.0, 0.5), "v": p32(0.5, -1.0)},
                   weights={"delta": 1.0, "u": 1.0, "v": 1.0}, loss_sum=1.0, samples=1)  # fmt: skip
    b = PartialSum(sums={"delta": p32(-6.0, 12.0), "u": p32(2.0, 0.5), "v": p32(1.0, -1.0)},
                   weights={"delta": 3.0, "u": 1.0, "v": 1.0}, loss_sum=3.0, samples=3)  # fmt: skip
    start = p32(10.0, 20.0)
    # Execute
    merged = merge([a, b], start, {"delta": algo.model_weighting, **algo.upload_tensors})
    agg = aggregate(1, merged.model, merged.mean_loss, merged.tensors, num_clients=2, total_clients=4)
    update = algo.server_update(start, algo.init_state(start), agg)
    # Assert
    _close(merged.model["w"], [9.0, 23.0])
    _close(update.state.U["w"], [3.0, 1.0])
    _close(update.state.V["w"], [1.5, -2.0])


def test_algorithm_declares_its_uploads_and_state() -> None:
    # Prepare / Execute / Assert
    assert BUILTIN_ALGORITHMS["fedcurv"] is FedCurv and FedCurv.coefficients == ("lam",)
    assert FedCurv.upload_tensors == {"u": "sum", "v": "sum"} and FedCurv().model_weighting == "samples"
    assert FedCurv.client_state == ("u_k", "v_k", "sent_round")


# ----------------------------------------------------------------------------- params, config, imports


@pytest.mark.parametrize(("key", "value"), [("lam", -1.0), ("lam", float("nan")), ("fisher_samples", 0)])
def test_params_reject_bad_values(key: str, value) -> None:
    # Prepare / Execute / Assert
    with pytest.raises(ValueError, match=f"{key}="):
        FedCurvParams(**{key: value})


def test_config_builds_fedcurv_and_rejects_a_fractional_fisher_samples() -> None:
    # Prepare
    cfg = build_config({"algorithm": {"name": "fedcurv", "lam": 0.1, "fisher_samples": 64}})
    # Execute
    algo = build_algorithm(cfg.algorithm)
    # Assert
    assert isinstance(algo, FedCurv) and algo.params == FedCurvParams(lam=0.1, fisher_samples=64)
    with pytest.raises(UserError, match="algorithm.fisher_samples"):
        build_config({"algorithm": {"name": "fedcurv", "fisher_samples": 2.5}})


def test_the_server_half_imports_without_torch() -> None:
    # Prepare / Execute
    code = "import sys, fedref_ray.algorithms.fedcurv; assert 'torch' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    # Assert
    assert proc.returncode == 0, proc.stderr


# ----------------------------------------------------------------------------- a short run


def test_a_local_run_finishes_differs_from_fedavg_and_counts_three_models_each_way(tmp_path) -> None:
    """digits, mlp (16 hidden), 8 clients, 4 a round, 3 rounds, local engine, same seed as FedAvg.
    Up: y, u, v every round, so cumulative bytes_up = 3 x FedAvg's. Down: round 1 sends x alone (U = V = 0 is not
    sent), later rounds x, U, V: with FedAvg's per-round m, bytes_down = [m, m + 3m, m + 6m]."""
    import fedref_ray

    # Prepare
    common = ["data.name=digits", "model.name=mlp", "model.hidden=16", "engine.name=local",
              "partition.num_clients=8", "run.clients_per_round=4", "run.rounds=3"]  # fmt: skip
    # Execute
    curv = fedref_ray.run(None, [*common, "algorithm.name=fedcurv", f"run.results_dir={tmp_path / 'curv'}"])
    avg = fedref_ray.run(None, [*common, "algorithm.name=fedavg", f"run.results_dir={tmp_path / 'avg'}"])
    # Assert
    assert len(curv.rounds) == 3 and np.isfinite(curv.rounds["test_loss"]).all()
    assert max(float(np.max(np.abs(curv.params[k] - avg.params[k]))) for k in avg.params) > 1e-4
    assert list(curv.rounds["bytes_up"]) == [3 * b for b in avg.rounds["bytes_up"]]
    m = int(avg.rounds["bytes_down"].iloc[0])
    assert list(avg.rounds["bytes_down"]) == [m, 2 * m, 3 * m]
    assert list(curv.rounds["bytes_down"]) == [m, 4 * m, 7 * m]
