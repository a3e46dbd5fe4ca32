"""Tests for FedNTD (Lee et al. 2022; BASELINES.md), every number derived by hand.

Term: beta * s * KL(q_g || q_l), q = softmax(not-true logits / tau), the KL summed over the C - 1 not-true
classes and averaged over the batch ("batchmean"), s = tau^2 (tau_squared=true, the authors' code) or 1.

Global model: torch.nn.Linear(1, 3) with weight [[g0], [0], [0]] and bias 0, so on x = 1 its logits are
[g0, 0, 0] and on x = 0 they are [0, 0, 0]. Local logits are chosen directly and passed to loss_term.

Sample A (x = 1, y = 0): not-true classes 1, 2. Global not-true logits [0, 0]: q_g = [1/2, 1/2].
  Local logits [5, 0, ln 3] (tau = 1): q_l = softmax([0, ln 3]) = [1/4, 3/4];
  KL(q_g || q_l) = 1/2 ln((1/2)/(1/4)) + 1/2 ln((1/2)/(3/4)) = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3) ~ 0.143841.
  (The reverse KL(q_l || q_g) = 1/4 ln(1/2) + 3/4 ln(3/2) ~ 0.130812; with the true class kept,
  q_g = softmax([g0, 0, 0]) depends on g0.)
Sample B (x = 0, y = 2): not-true classes 0, 1. Global [0, 0] and local [1, 1, 7] -> [1, 1]: both uniform, KL = 0.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import fedref_ray
from fedref_ray.algorithms import FedNTD, build_algorithm
from fedref_ray.algorithms.fedntd import FedNTDParams, NotTrueDistillationHalf, not_true_logits
from fedref_ray.client_worker import SpareModels
from fedref_ray.config import build_config
from fedref_ray.errors import UserError
from tests.algorithms.helpers import context, linear

HALF_LN_4_3 = 0.5 * math.log(4.0 / 3.0)  # KL of sample A at tau = 1


def _half(g0: float = 0.0, **params) -> NotTrueDistillationHalf:
    """A FedNTD client half whose round's global model is Linear(1, 3) with weight [[g0], [0], [0]], bias 0."""
    fm = linear([[g0], [0.0], [0.0]], bias=[0.0, 0.0, 0.0])
    ctx = context(fm)
    spares = SpareModels(lambda: torch.nn.Linear(1, 3), "cpu")
    half = FedNTD(FedNTDParams(**params)).client(dataclasses.replace(ctx, spares=spares))
    assert isinstance(half, NotTrueDistillationHalf)
    return half


def _term(half, local, x, y) -> float:
    logits = torch.tensor(local, dtype=torch.float32)
    out = half.loss_term(logits, torch.tensor(x, dtype=torch.float32), torch.tensor(y))
    return float(out)


SAMPLE_A = ([[5.0, 0.0, math.log(3.0)]], [[1.0]], [0])


def test_not_true_logits_drop_the_true_class_of_each_row() -> None:
    """[[0, 1, 2], [3, 4, 5]] with y = [0, 2] keeps [1, 2] and [3, 4]."""
    # Prepare
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    # Execute
    kept = not_true_logits(logits, torch.tensor([0, 2]))
    # Assert
    torch.testing.assert_close(kept, torch.tensor([[1.0, 2.0], [3.0, 4.0]]), rtol=0, atol=0)


def test_term_is_the_not_true_kl_of_global_to_local() -> None:
    """Sample A, beta = 1, tau = 1: 1/2 ln(4/3) ~ 0.143841 (not the reverse KL ~ 0.130812)."""
    # Prepare
    half = _half()
    # Execute
    value = _term(half, *SAMPLE_A)
    # Assert
    assert value == pytest.approx(HALF_LN_4_3, rel=1e-6)


def test_beta_scales_the_term() -> None:
    """beta = 2: 2 * 1/2 ln(4/3) = ln(4/3) ~ 0.287682."""
    # Prepare / Execute
    value = _term(_half(beta=2.0), *SAMPLE_A)
    # Assert
    assert value == pytest.approx(math.log(4.0 / 3.0), rel=1e-6)


def test_the_true_class_logit_of_the_global_model_does_not_matter() -> None:
    """g0 = 0 and g0 = 7 give the same term: class 0 is sample A's true class. Kept, it would change q_g
    (softmax([7, 0, 0]) ~ [0.998, 0.001, 0.001])."""
    # Prepare / Execute
    low, high = _term(_half(g0=0.0), *SAMPLE_A), _term(_half(g0=7.0), *SAMPLE_A)
    # Assert
    assert low == pytest.approx(HALF_LN_4_3, rel=1e-6) and high == pytest.approx(low, rel=1e-6)


def test_the_true_class_logit_of_the_local_model_does_not_matter() -> None:
    """Local logit of class 0 changed from 5 to -3: the term stays 1/2 ln(4/3)."""
    # Prepare / Execute
    value = _term(_half(), [[-3.0, 0.0, math.log(3.0)]], [[1.0]], [0])
    # Assert
    assert value == pytest.approx(HALF_LN_4_3, rel=1e-6)


@pytest.mark.parametrize(("tau_squared", "expected"), [(True, 4 * HALF_LN_4_3), (False, HALF_LN_4_3)])
def test_temperature_and_the_tau_squared_option(tau_squared: bool, expected: float) -> None:
    """tau = 2, local [5, 0, ln 9]: not-true [0, ln 9] / 2 = [0, ln 3], q_l = [1/4, 3/4]; global [0, 0] / 2,
    q_g = [1/2, 1/2]; KL = 1/2 ln(4/3). tau_squared: 4 * 1/2 ln(4/3) = 2 ln(4/3) ~ 0.575364; else ~ 0.143841."""
    # Prepare
    half = _half(tau=2.0, tau_squared=tau_squared)
    # Execute
    value = _term(half, [[5.0, 0.0, math.log(9.0)]], [[1.0]], [0])
    # Assert
    assert value == pytest.approx(expected, rel=1e-6)


def test_the_kl_is_summed_over_classes_and_averaged_over_the_batch() -> None:
    """Batch [A, B]: (1/2 ln(4/3) + 0) / 2 = 1/4 ln(4/3) ~ 0.071921 ("batchmean"; a sum over the batch would
    give 1/2 ln(4/3), torch's elementwise "mean" over 2 x 2 entries 1/8 ln(4/3))."""
    # Prepare
    half = _half(g0=7.0)
    local = [[5.0, 0.0, math.log(3.0)], [1.0, 1.0, 7.0]]
    # Execute
    value = _term(half, local, [[1.0], [0.0]], [0, 2])
    # Assert
    assert value == pytest.approx(HALF_LN_4_3 / 2, rel=1e-6)


@pytest.mark.parametrize(("tau", "scale"), [(1.0, 1.0), (2.0, 2.0)])
def test_gradient_flows_through_the_local_logits_only(tau: float, scale: float) -> None:
    """d/dl [tau^2 KL(q_g || softmax(l / tau))] = tau (q_l - q_g) on the not-true logits, 0 on the true class.
    Sample A: q_l - q_g = [1/4 - 1/2, 3/4 - 1/2] = [-1/4, 1/4]; tau = 1: [0, -1/4, 1/4]; tau = 2 (local
    [5, 0, ln 9], same q_l): [0, -1/2, 1/2]. The frozen global model gets no gradient."""
    # Prepare
    half = _half(tau=tau)
    logits = torch.tensor([[5.0, 0.0, math.log(3.0 if tau == 1.0 else 9.0)]], requires_grad=True)
    # Execute
    half.loss_term(logits, torch.ones(1, 1), torch.tensor([0])).backward()
    # Assert
    torch.testing.assert_close(logits.grad, scale * torch.tensor([[0.0, -0.25, 0.25]]), rtol=1e-5, atol=1e-6)
    assert all(p.grad is None and not p.requires_grad for p in half.global_model.parameters())


def test_the_global_model_is_the_rounds_start() -> None:
    """The frozen copy holds ctx.start (weight [[7], [0], [0]]) even after the local model moves."""
    # Prepare
    half = _half(g0=7.0)
    with torch.no_grad():
        half.ctx.model.weight.fill_(-1.0)
    # Execute
    out = half.global_model(torch.ones(1, 1))
    # Assert
    torch.testing.assert_close(out, torch.tensor([[7.0, 0.0, 0.0]]), rtol=0, atol=0)


def test_beta_zero_adds_nothing_and_keeps_no_copy() -> None:
    # Prepare / Execute
    half = _half(beta=0.0)
    # Assert
    assert half.loss_term(torch.zeros(1, 3), torch.ones(1, 1), torch.tensor([0])) is None
    assert half.global_model is None


def test_finish_uploads_nothing_and_keeps_no_state() -> None:
    # Prepare / Execute
    result = _half().finish(torch.zeros(6), 3)
    # Assert
    assert result.tensors == {} and result.scalars == {} and result.state is None
    assert FedNTD.client_state == () and FedNTD.upload_tensors == {}


@pytest.mark.parametrize(("field", "value"), [("beta", -1.0), ("beta", float("nan")), ("tau", 0.0), ("tau", -1.0)])
def test_params_reject_bad_values(field: str, value: float) -> None:
    # Prepare / Execute / Assert
    with pytest.raises(ValueError, match=f"{field}="):
        FedNTDParams(**{field: value})


def test_config_builds_fedntd_with_the_paper_defaults_and_overrides() -> None:
    """Defaults beta = 1, tau = 1, tau_squared = true; the flat section sets them."""
    # Prepare
    cfg = build_config({"algorithm": {"name": "fedntd", "beta": 0.5, "tau": 3, "tau_squared": False}})
    # Execute
    algo = build_algorithm(cfg.algorithm)
    # Assert
    assert isinstance(algo, FedNTD) and FedNTDParams() == FedNTDParams(beta=1.0, tau=1.0, tau_squared=True)
    assert algo.params == FedNTDParams(beta=0.5, tau=3.0, tau_squared=False)
    with pytest.raises(UserError, match="algorithm.tau"):
        build_config({"algorithm": {"name": "fedntd", "tau": 0}})


def test_a_local_run_finishes_and_ends_elsewhere_than_fedavg(tmp_path) -> None:
    """digits, mlp hidden 16, 8 clients, 4 per round, 3 rounds, same seed: only the client loss differs."""
    # Prepare
    common = ["data.name=digits", "model.name=mlp", "model.hidden=16", "partition.num_clients=8",
              "run.clients_per_round=4", "run.rounds=3", "engine.name=local"]  # fmt: skip
    # Execute
    ntd = fedref_ray.run(None, [*common, "algorithm.name=fedntd", f"run.results_dir={tmp_path / 'ntd'}"])
    avg = fedref_ray.run(None, [*common, "algorithm.name=fedavg", f"run.results_dir={tmp_path / 'avg'}"])
    # Assert
    assert len(ntd.rounds) == 3 and ntd.summary["algorithm"] == "fedntd"
    assert set(ntd.params) == set(avg.params)
    assert not all(np.allclose(ntd.params[k], avg.params[k]) for k in avg.params)
