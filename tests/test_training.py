"""Tests for the local SGD loop: the proximal gradient flows, the reported loss is F_k alone, early stop, seeding.

All on a logistic-regression model (4 features, 3 classes) and 40 random samples, so each test is milliseconds.
Training goes the production way: a FlatModel, a ClientContext and FedProx's client half hooked into sgd_epochs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fedref_ray.algorithms import ClientContext, FedProx
from fedref_ray.algorithms.fedprox import FedProxParams, ProximalHalf
from fedref_ray.config import TrainingConfig
from fedref_ray.flat_model import FlatModel
from fedref_ray.metrics import summarize
from fedref_ray.models import build_model
from fedref_ray.params import Params, global_norm, load_params, params_from_model
from fedref_ray.training import evaluation_counts, sgd_epochs

N = 40


def _setup(seed: int = 0) -> tuple[torch.nn.Module, Params, np.ndarray, np.ndarray, np.ndarray]:
    """A seeded logreg model, its initial params and a small random 3-class problem."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model("logreg", (4,), 3)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, 4)).astype(np.float32)
    y = rng.integers(0, 3, N).astype(np.int64)
    return model, params_from_model(model), x, y, np.arange(N)


@dataclass(frozen=True)
class Trained:
    params: Params
    loss: float
    samples: int


def local_train(
    model: torch.nn.Module,
    start: Params,
    x: np.ndarray,
    y: np.ndarray,
    idx: np.ndarray,
    cfg: TrainingConfig,
    rng: np.random.Generator,
    mu: float = 0.0,
    anchor: Params | None = None,
    max_samples: int | None = None,
) -> Trained:
    """One client's training as ClientWorker.train runs it: load start into the flat model, hook the half in."""
    fm = FlatModel(model)
    start_flat = fm.pack(start)
    fm.load(start_flat)
    anchor_flat = fm.pack(anchor) if anchor is not None else start_flat
    ctx = ClientContext(0, 0, len(idx), cfg.lr, fm.model, fm.flat, start_flat, {}, None, fm)
    half = ProximalHalf(FedProx(FedProxParams(mu)), ctx, mu, anchor_flat)
    stats = sgd_epochs(fm.model, x, y, idx, cfg, rng, half=half, max_samples=max_samples)
    return Trained({k: v.copy() for k, v in fm.unpack(fm.flat).items()}, stats.loss, stats.samples)


def evaluate(model: torch.nn.Module, params: Params, x: np.ndarray, y: np.ndarray, num_classes: int):
    load_params(model, params)
    return summarize([evaluation_counts(model, x, y, num_classes, 1000)])


def _shift(params: Params, by: float) -> Params:
    return {k: (v + by).astype(np.float32) for k, v in params.items()}


def _dist(a: Params, b: Params) -> float:
    return global_norm({k: a[k].astype(np.float64) - b[k] for k in a})


def _train(mu: float, anchor: Params | None, seed: int = 1, **cfg: object) -> tuple[Params, object]:
    model, start, x, y, idx = _setup()
    config = TrainingConfig(**{"batch_size": 8, "lr": 0.1, "local_epochs": 3, **cfg})
    result = local_train(model, start, x, y, idx, config, np.random.default_rng(seed), mu=mu, anchor=anchor)
    return start, result


def test_fedprox_with_mu_zero_is_fedavg_bit_for_bit() -> None:
    # Prepare
    model, start, x, y, idx = _setup()
    cfg = TrainingConfig(batch_size=8, lr=0.1, local_epochs=2)
    # Execute
    fedavg = local_train(model, start, x, y, idx, cfg, np.random.default_rng(5))
    fedprox = local_train(model, start, x, y, idx, cfg, np.random.default_rng(5), mu=0.0, anchor=start)
    # Assert
    assert fedavg.loss == fedprox.loss and fedavg.samples == fedprox.samples
    for k in fedavg.params:
        np.testing.assert_array_equal(fedavg.params[k], fedprox.params[k])


def test_one_full_batch_step_includes_the_proximal_gradient() -> None:
    """One step on the whole set: theta_1 = theta_0 - lr (grad F(theta_0) + mu (theta_0 - a)), grad F by autograd."""
    # Prepare
    model, start, x, y, idx = _setup()
    anchor = _shift(start, 0.5)
    mu, lr = 2.0, 0.1
    load_params(model, start)
    loss = F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    grads = {name: p.grad.numpy().astype(np.float64) for name, p in model.named_parameters()}
    expected = {k: start[k] - lr * (grads[k] + mu * (start[k].astype(np.float64) - anchor[k])) for k in start}
    cfg = TrainingConfig(batch_size=N, lr=lr, local_epochs=1)
    # Execute
    result = local_train(model, start, x, y, idx, cfg, np.random.default_rng(0), mu=mu, anchor=anchor)
    # Assert
    assert set(result.params) == set(expected)
    for k in expected:
        np.testing.assert_allclose(result.params[k], expected[k], rtol=1e-5, atol=1e-6)


def test_large_mu_keeps_the_model_closer_to_the_anchor() -> None:
    """Anchor = start (FedProx): mu = 5 (lr mu = 0.5, a contraction) must drift less than half as far as mu = 0."""
    # Prepare
    model, start, *_ = _setup()
    # Execute
    _, free = _train(0.0, None)
    _, prox = _train(5.0, start)
    # Assert
    d_free, d_prox = _dist(free.params, start), _dist(prox.params, start)
    assert d_free > 0.05
    assert d_prox < 0.5 * d_free


def test_huge_mu_pulls_toward_an_anchor_away_from_the_start() -> None:
    """Anchor = start + 1 on every parameter (distance sqrt(15) ~ 3.87); mu = 10, lr = 0.1 make each step
    land within lr * |grad F| of the anchor, so after 15 steps the model sits next to it."""
    # Prepare
    model, start, *_ = _setup()
    anchor = _shift(start, 1.0)
    # Execute
    _, free = _train(0.0, None)
    _, pulled = _train(10.0, anchor)
    # Assert
    assert _dist(start, anchor) == pytest.approx(np.sqrt(15), rel=1e-6)
    assert _dist(pulled.params, anchor) < 0.1 * _dist(start, anchor)
    assert _dist(pulled.params, anchor) < _dist(free.params, anchor)


def test_reported_loss_is_f_k_without_the_proximal_term() -> None:
    """One full-batch step: the reported loss is F_k(theta_0) (evaluated separately), although
    h_k(theta_0) = F_k + mu/2 ||theta_0 - a||^2 = F_k + 50 * 15 is far larger."""
    # Prepare
    model, start, x, y, idx = _setup()
    anchor = _shift(start, 1.0)
    f_start = evaluate(model, start, x, y, num_classes=3).loss
    cfg = TrainingConfig(batch_size=N, lr=0.001, local_epochs=1)
    # Execute
    result = local_train(model, start, x, y, idx, cfg, np.random.default_rng(0), mu=100.0, anchor=anchor)
    # Assert
    assert result.loss == pytest.approx(f_start, rel=1e-6)


def test_reported_loss_is_the_mean_of_the_minibatch_losses_of_f_k() -> None:
    """Two epochs of one full batch, lr tiny: the mean of F(theta_0) and F(theta_1) ~ F(theta_0), even with mu > 0."""
    # Prepare
    model, start, x, y, idx = _setup()
    anchor = _shift(start, 3.0)
    f_start = evaluate(model, start, x, y, num_classes=3).loss
    cfg = TrainingConfig(batch_size=N, lr=1e-6, local_epochs=2)
    # Execute
    result = local_train(model, start, x, y, idx, cfg, np.random.default_rng(0), mu=1.0, anchor=anchor)
    # Assert
    assert result.samples == 2 * N
    assert result.loss == pytest.approx(f_start, rel=1e-4)


def test_max_samples_stops_early_and_reports_the_samples_processed() -> None:
    """batch 8, 3 epochs of 40 = 120 samples in full; max_samples = 20 stops after the batch that
    reaches it: 8, 16, then a last batch cut to 4 -> 20 samples, and nothing more in later epochs."""
    # Prepare
    model, start, x, y, idx = _setup()
    cfg = TrainingConfig(batch_size=8, lr=0.1, local_epochs=3)
    # Execute
    full = local_train(model, start, x, y, idx, cfg, np.random.default_rng(3))
    partial = local_train(model, start, x, y, idx, cfg, np.random.default_rng(3), max_samples=20)
    exact = local_train(model, start, x, y, idx, cfg, np.random.default_rng(3), max_samples=16)
    # Assert
    assert full.samples == 120
    assert partial.samples == 20
    assert exact.samples == 16
    assert _dist(partial.params, full.params) > 0
    assert np.isfinite(partial.loss)


def test_same_seed_same_params_different_seed_different_params() -> None:
    # Prepare / Execute
    _, a = _train(0.5, _setup()[1], seed=11)
    _, b = _train(0.5, _setup()[1], seed=11)
    _, c = _train(0.5, _setup()[1], seed=12)
    # Assert
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert a.loss == b.loss
    assert _dist(a.params, c.params) > 0


def test_training_starts_from_start_not_from_the_models_current_weights() -> None:
    """The model object is reused between clients: local_train must load `start` first."""
    # Prepare
    model, start, x, y, idx = _setup()
    cfg = TrainingConfig(batch_size=8, lr=0.1, local_epochs=1)
    first = local_train(model, start, x, y, idx, cfg, np.random.default_rng(0))
    load_params(model, _shift(start, 5.0))
    # Execute
    again = local_train(model, start, x, y, idx, cfg, np.random.default_rng(0))
    # Assert
    for k in first.params:
        np.testing.assert_array_equal(first.params[k], again.params[k])
