"""Tests for MOON (Li, He and Song 2021; BASELINES.md), every number derived by hand.

l_con = -log( e^{s_g/tau} / (e^{s_g/tau} + e^{s_p/tau}) ) = log(1 + e^{(s_p - s_g)/tau}), s_g = cos(z, z_g),
s_p = cos(z, z_p), averaged over the batch; the term added to the loss is mu * l_con.

Model: RepresentationSequential(Linear(2, 2, bias=False), Linear(2, 3)): the representation is z = W x
(the input to the last linear layer), so on x = e1 it is W's first column and on x = e2 its second.
  local    W   = [[1, 0], [0, 1]]: z(e1) = [1, 0],   z(e2) = [0, 1]
  global   W_g = [[3, 1], [0, 0]]: z_g(e1) = [3, 0], z_g(e2) = [1, 0]
  previous W_p = [[0, 1], [1, 0]]: z_p(e1) = [0, 1], z_p(e2) = [1, 0]
Sample e1: s_g = cos([1, 0], [3, 0]) = 1 (a dot product would give 3), s_p = cos([1, 0], [0, 1]) = 0;
  tau = 0.5: l = log(1 + e^{-2}) ~ 0.126928.
Sample e2: s_g = cos([0, 1], [1, 0]) = 0, s_p = 0: l = log 2 ~ 0.693147.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest
import torch

import fedref_ray
from fedref_ray.algorithms import ClientContext, Moon, build_algorithm
from fedref_ray.algorithms.moon import ModelContrastiveHalf, MoonParams
from fedref_ray.client_worker import SpareModels
from fedref_ray.config import build_config
from fedref_ray.errors import UserError
from fedref_ray.flat_model import FlatModel
from fedref_ray.models import RepresentationSequential

LOCAL, GLOBAL, PREV = [[1.0, 0.0], [0.0, 1.0]], [[3.0, 1.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]
E1, E2 = [1.0, 0.0], [0.0, 1.0]
L_E1 = math.log(1.0 + math.exp(-2.0))  # ~ 0.126928


def _net(batchnorm: bool = False) -> torch.nn.Module:
    layers = [torch.nn.Linear(2, 2, bias=False)] + ([torch.nn.BatchNorm1d(2)] if batchnorm else [])
    return RepresentationSequential(*layers, torch.nn.Linear(2, 3))


def _flat(fm: FlatModel, first: list[list[float]]) -> torch.Tensor:
    """The flat vector of `fm`'s network with the first layer's weight set to `first` (the rest as built)."""
    views = fm.named_views(fm.flat.clone())
    views["0.weight"].copy_(torch.tensor(first))
    return fm.pack({k: v.numpy() for k, v in views.items()})


def _half(prev=PREV, batchnorm: bool = False, **params) -> tuple[FlatModel, ModelContrastiveHalf]:
    """A MOON half whose model holds W = LOCAL, round start W_g = GLOBAL, and state "prev" W_p (None: none yet)."""
    torch.manual_seed(0)
    fm = FlatModel(_net(batchnorm), "cpu")
    start = _flat(fm, GLOBAL)
    fm.load(_flat(fm, LOCAL))  # as if local training had moved W from W_g to LOCAL
    state = None if prev is None else {"prev": _flat(fm, prev)}
    ctx = ClientContext(
        round=2, client_id=0, num_samples=2, lr=0.1, model=fm.model, flat=fm.flat, start=start, received={},
        state=state, layout=fm, spares=SpareModels(lambda: _net(batchnorm), "cpu"),
    )  # fmt: skip
    half = Moon(MoonParams(**params)).client(ctx)
    assert isinstance(half, ModelContrastiveHalf)
    return fm, half


def _term(half, xs):
    x = torch.tensor(xs)
    return half.loss_term(half.ctx.model(x), x, torch.zeros(len(xs), dtype=torch.long))


def test_one_sample_gives_the_hand_computed_term() -> None:
    """e1, mu = 1, tau = 0.5: log(1 + e^{-2}) ~ 0.126928 (cos, not dot: [3, 0] counts as parallel)."""
    # Prepare
    _, half = _half()
    # Execute
    value = float(_term(half, [E1]).detach())
    # Assert
    assert value == pytest.approx(L_E1, rel=1e-6)


def test_global_is_the_positive_and_previous_the_negative() -> None:
    """prev = [[-1, 0], [0, 0]], so z_p(e1) = [-1, 0] and s_p = -1, s_g = 1: l = log(1 + e^{(-1 - 1)/0.5})
    = log(1 + e^{-4}) ~ 0.018149. With the roles swapped (previous model as the positive) it would be
    log(1 + e^{4}) ~ 4.018149."""
    # Prepare
    _, half = _half(prev=[[-1.0, 0.0], [0.0, 0.0]])
    # Execute
    value = float(_term(half, [E1]).detach())
    # Assert
    assert value == pytest.approx(math.log(1.0 + math.exp(-4.0)), rel=1e-5)


def test_temperature_and_mu() -> None:
    """e1, tau = 1, mu = 3: 3 log(1 + e^{-1}) ~ 3 * 0.313262 = 0.939785."""
    # Prepare
    _, half = _half(tau=1.0, mu=3.0)
    # Execute
    value = float(_term(half, [E1]).detach())
    # Assert
    assert value == pytest.approx(3.0 * math.log(1.0 + math.exp(-1.0)), rel=1e-6)


def test_the_term_is_averaged_over_the_batch() -> None:
    """[e1, e2], mu = 2: 2 * (log(1 + e^{-2}) + log 2) / 2 = 0.126928 + 0.693147 = 0.820075 (a sum would double it)."""
    # Prepare
    _, half = _half(mu=2.0)
    # Execute
    value = float(_term(half, [E1, E2]).detach())
    # Assert
    assert value == pytest.approx(L_E1 + math.log(2.0), rel=1e-6)


def test_before_the_first_round_the_previous_model_is_the_global_model() -> None:
    """No state: z_p = z_g, so s_p = s_g and l = log 2 on every sample, whatever z: a constant, zero gradient."""
    # Prepare
    fm, half = _half(prev=None)
    # Execute
    value = _term(half, [E1, E2])
    value.backward()
    # Assert
    assert float(value.detach()) == pytest.approx(math.log(2.0), rel=1e-6)
    assert float(fm.model[0].weight.grad.abs().max()) < 1e-6
    torch.testing.assert_close(half.prev_model[0].weight, torch.tensor(GLOBAL), rtol=0, atol=0)


def test_the_frozen_models_hold_the_start_and_the_state_and_get_no_gradient() -> None:
    """Global copy = ctx.start (W_g), previous copy = state["prev"] (W_p); the gradient reaches the local W only."""
    # Prepare
    fm, half = _half()
    # Execute
    _term(half, [E1]).backward()
    # Assert
    torch.testing.assert_close(half.global_model[0].weight, torch.tensor(GLOBAL), rtol=0, atol=0)
    torch.testing.assert_close(half.prev_model[0].weight, torch.tensor(PREV), rtol=0, atol=0)
    assert fm.model[0].weight.grad is not None and float(fm.model[0].weight.grad.abs().max()) > 0
    for copy in (half.global_model, half.prev_model):
        assert all(p.grad is None and not p.requires_grad for p in copy.parameters())


def test_finish_keeps_the_trained_model_as_state() -> None:
    """state = {"prev": a copy of the trained flat model}; nothing is uploaded besides the model."""
    # Prepare
    fm, half = _half()
    trained = fm.flat.clone()
    # Execute
    result = half.finish(trained, 4)
    trained.zero_()
    # Assert
    assert set(result.state) == {"prev"} and result.tensors == {} and result.scalars == {}
    torch.testing.assert_close(result.state["prev"], fm.flat, rtol=0, atol=0)
    assert Moon.client_state == ("prev",)


def test_the_second_forward_pass_leaves_batchnorm_statistics_as_one_pass_does() -> None:
    """BatchNorm1d(2) after W (momentum 0.1, running mean 0 at start): the batch [e1, e2] gives z = [[1, 0], [0, 1]],
    batch mean [1/2, 1/2], so after one forward pass the running mean is 0.1 * [1/2, 1/2] = [0.05, 0.05]; the
    representation pass inside loss_term must not move it again (to 0.095) nor count a second batch, and the
    restored statistics must not break the backward pass."""
    # Prepare
    fm, half = _half(batchnorm=True)
    fm.model.train()
    # Execute
    _term(half, [E1, E2]).backward()
    # Assert
    bn = fm.model[1]
    torch.testing.assert_close(bn.running_mean, torch.tensor([0.05, 0.05]), rtol=1e-6, atol=1e-7)
    assert int(bn.num_batches_tracked) == 1


def test_mu_zero_adds_nothing_but_still_keeps_the_state() -> None:
    # Prepare
    fm, half = _half(mu=0.0)
    # Execute / Assert
    assert _term(half, [E1]) is None
    assert set(half.finish(fm.flat, 1).state) == {"prev"}


def test_a_model_without_representation_is_a_one_line_user_error() -> None:
    """A plain torch.nn.Linear has no representation(x): the half's constructor (before any training) says so."""
    # Prepare
    fm = FlatModel(torch.nn.Linear(2, 3), "cpu")
    ctx = ClientContext(
        round=1, client_id=0, num_samples=1, lr=0.1, model=fm.model, flat=fm.flat, start=fm.flat.clone(),
        received={}, state=None, layout=fm,
    )  # fmt: skip
    # Execute
    with pytest.raises(UserError) as info:
        Moon().client(ctx)
    # Assert
    message = str(info.value)
    assert "model.name" in message and "representation(x)" in message and "moon" in message
    assert "torch.nn.modules.linear.Linear" in message and "\n" not in message


@pytest.mark.parametrize(("field", "value"), [("mu", -1.0), ("mu", float("nan")), ("tau", 0.0), ("tau", -0.5)])
def test_params_reject_bad_values(field: str, value: float) -> None:
    # Prepare / Execute / Assert
    with pytest.raises(ValueError, match=f"{field}="):
        MoonParams(**{field: value})


def test_config_builds_moon_with_the_paper_defaults_and_overrides() -> None:
    """Defaults mu = 1, tau = 0.5 (the authors' main.py); the flat section sets them."""
    # Prepare
    cfg = build_config({"algorithm": {"name": "moon", "mu": 5, "tau": 1}})
    # Execute
    algo = build_algorithm(cfg.algorithm)
    # Assert
    assert isinstance(algo, Moon) and MoonParams() == MoonParams(mu=1.0, tau=0.5)
    assert algo.params == MoonParams(mu=5.0, tau=1.0)


COMMON = ["data.name=digits", "partition.num_clients=8", "run.clients_per_round=4", "run.rounds=3",
          "engine.name=local"]  # fmt: skip


def test_a_local_run_finishes_and_ends_elsewhere_than_fedavg(tmp_path) -> None:
    """digits, mlp hidden 16, 8 clients, 4 per round, 3 rounds, same seed: only the client loss differs."""
    # Prepare
    common = [*COMMON, "model.name=mlp", "model.hidden=16"]
    # Execute
    moon = fedref_ray.run(None, [*common, "algorithm.name=moon", f"run.results_dir={tmp_path / 'moon'}"])
    avg = fedref_ray.run(None, [*common, "algorithm.name=fedavg", f"run.results_dir={tmp_path / 'avg'}"])
    # Assert
    assert len(moon.rounds) == 3 and moon.summary["algorithm"] == "moon"
    assert set(moon.params) == set(avg.params)
    assert not all(np.allclose(moon.params[k], avg.params[k]) for k in avg.params)


def test_a_user_model_without_representation_fails_the_run_with_a_one_line_user_error(tmp_path, monkeypatch) -> None:
    """model.name=mymoonmodel:build returns a plain nn.Sequential: MOON stops with the UserError, FedAvg would run."""
    # Prepare
    (tmp_path / "mymoonmodel.py").write_text(
        textwrap.dedent(
            """
            import math
            from torch import nn

            def build(shape, num_classes):
                return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), num_classes))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # Execute
    with pytest.raises(UserError) as info:
        fedref_ray.run(
            None, [*COMMON, "model.name=mymoonmodel:build", "algorithm.name=moon", f"run.results_dir={tmp_path / 'r'}"]
        )
    # Assert
    message = str(info.value)
    assert "model.name" in message and "representation(x)" in message and "algorithm.name='moon'" in message
    assert "torch.nn.modules.container.Sequential" in message and "\n" not in message
