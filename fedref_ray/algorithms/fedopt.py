"""FedOpt (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2): the server treats
theta_bar_r - theta_{r-1} as a pseudo-gradient d (theta_bar: the n_k-weighted mean of the client models).

All three server optimizers share the first moment m <- beta1 m + (1 - beta1) d and the step
theta <- theta + lr * m / (sqrt(v) + tau); they differ in the second moment v:

- adam:    v <- beta2 v + (1 - beta2) d^2
- yogi:    v <- v - (1 - beta2) d^2 sign(v - d^2)
- adagrad: v <- v + d^2                          (beta2 is not used)

`variant="paper"` (the default) is Algorithm 2 as printed: m_0 = 0, v_0 = tau^2, no bias
correction. `variant="flower"` does what Flower 1.x's strategies do (read in flwr 1.42.0,
framework/py/flwr/server/strategy/{fedadam,fedyogi,fedadagrad}.py, `aggregate_fit`; the message-API
strategies in flwr/serverapp/strategy/ do the same math), so numbers can be compared with Flower's:

- m and v start at zero (`np.zeros_like` on the first call: fedadam.py lines 161 and 169,
  fedyogi.py 161 and 169, fedadagrad.py 155 and 163);
- FedAdam alone scales the learning rate by Adam's bias correction,
  eta_norm = lr * sqrt(1 - beta2^(r + 1)) / (1 - beta1^(r + 1)) with r the server round (1 in the
  first round; fedadam.py lines 179-183). The exponent is r + 1, one more than Kingma and Ba's
  t = r, and it follows the round number, not a count of steps; this variant does the same
  (`aggregate.round`). FedYogi and FedAdagrad use lr as it is (fedyogi.py 175-178,
  fedadagrad.py 168-171);
- Flower's FedAdagrad hard-wires beta_1 = 0, i.e. m = d (fedadagrad.py line 122, `beta_1=0.0`
  passed to FedOpt); here beta1 stays a coefficient in both variants, so set beta1=0 to reproduce
  Flower's FedAdagrad (Reddi et al.'s Algorithm 2 has the momentum).

Decisions: the moments are float64 and the model is rounded to float32 once per round (Flower
computes in the arrays' own dtype); a round nobody reports in leaves the model and the moments
unchanged (the server does not call `server_update`), as Flower, where such a round does not
aggregate. `step_applied` is True in every round FedOpt runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fedref_ray.algorithms.base import Aggregate, Algorithm, ServerUpdate, check_choices
from fedref_ray.params import Params


@dataclass(frozen=True)
class FedOptParams:
    """The server optimizer and its coefficients (Reddi et al. 2021, Table 1 names them); `variant` as above."""

    server_optimizer: Literal["adam", "yogi", "adagrad"] = "adam"
    server_lr: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3
    variant: Literal["paper", "flower"] = "paper"

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.server_lr > 0:
            raise ValueError(f"server_lr={self.server_lr!r} is not allowed: a number > 0")
        for key in ("beta1", "beta2"):
            if not 0 <= getattr(self, key) < 1:
                raise ValueError(f"{key}={getattr(self, key)!r} is not allowed: a number in [0, 1)")
        if not self.tau > 0:
            raise ValueError(f"tau={self.tau!r} is not allowed: a number > 0")


@dataclass(frozen=True)
class FedAdagradParams(FedOptParams):
    """FedOpt's keys with the server optimizer fixed to adagrad (`algorithm.name=fedadagrad`)."""

    server_optimizer: Literal["adagrad"] = "adagrad"


@dataclass(frozen=True)
class FedOptState:
    """The server optimizer's first and second moments (float64)."""

    m: Params
    v: Params


def fedopt_step(
    params: Params,
    aggregate: Params,
    m: Params,
    v: Params,
    *,
    optimizer: str,
    lr: float,
    beta1: float,
    beta2: float,
    tau: float,
) -> tuple[Params, Params, Params]:
    """One server-optimizer step with step size `lr`; returns (new params, new m, new v)."""
    new_params, new_m, new_v = {}, {}, {}
    for k, theta in params.items():
        theta64 = theta.astype(np.float64)
        delta = aggregate[k].astype(np.float64) - theta64
        m_k = beta1 * m[k] + (1 - beta1) * delta
        sq = delta * delta
        if optimizer == "adam":
            v_k = beta2 * v[k] + (1 - beta2) * sq
        elif optimizer == "yogi":
            v_k = v[k] - (1 - beta2) * sq * np.sign(v[k] - sq)
        elif optimizer == "adagrad":
            v_k = v[k] + sq
        else:
            raise ValueError(f"server_optimizer={optimizer!r} is not allowed: one of adam, yogi, adagrad")
        new_params[k] = (theta64 + lr * m_k / (np.sqrt(v_k) + tau)).astype(np.float32)
        new_m[k], new_v[k] = m_k, v_k
    return new_params, new_m, new_v


def step_size(p: FedOptParams, round_: int) -> float:
    """The learning rate of round `round_`'s step: server_lr, times Flower's FedAdam bias correction
    sqrt(1 - beta2^(round + 1)) / (1 - beta1^(round + 1)) for variant=flower with adam."""
    if p.variant == "flower" and p.server_optimizer == "adam":
        t = round_ + 1.0
        return p.server_lr * float(np.sqrt(1 - p.beta2**t) / (1 - p.beta1**t))
    return p.server_lr


class FedOpt(Algorithm):
    """Only the server half differs from FedAvg: an Adam, Yogi or Adagrad step on the pseudo-gradient."""

    name = "fedopt"
    Params = FedOptParams
    coefficients = ("server_lr",)

    def init_state(self, model: Params) -> FedOptState:
        v0 = 0.0 if self.params.variant == "flower" else self.params.tau**2
        return FedOptState(
            m={k: np.zeros(v.shape) for k, v in model.items()},
            v={k: np.full(v.shape, v0) for k, v in model.items()},
        )

    def server_update(self, model: Params, state: FedOptState, aggregate: Aggregate) -> ServerUpdate:
        p = self.params
        params, m, v = fedopt_step(
            model, aggregate.model, state.m, state.v,
            optimizer=p.server_optimizer, lr=step_size(p, aggregate.round), beta1=p.beta1, beta2=p.beta2, tau=p.tau,
        )  # fmt: skip
        return ServerUpdate(params, FedOptState(m, v), step_applied=True)


class FedAdagrad(FedOpt):
    """FedOpt with adagrad (Reddi et al. 2021, Algorithm 2, FedAdagrad) under its own name; same keys."""

    name = "fedadagrad"
    Params = FedAdagradParams
