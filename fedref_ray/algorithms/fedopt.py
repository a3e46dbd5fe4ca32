"""FedOpt (Reddi et al. 2021, Algorithm 2): the server treats theta_bar_r - theta_{r-1} as a pseudo-gradient.

FedAdam and FedYogi share first-moment updates and differ in the second moment;
moments start at m = 0, v = tau^2 as in the paper (no bias correction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fedref_ray.algorithms.base import Aggregate, Algorithm, ServerUpdate, check_choices
from fedref_ray.params import Params


@dataclass(frozen=True)
class FedOptParams:
    """The server optimizer and its coefficients (Reddi et al. 2021, Table 1 names them)."""

    server_optimizer: Literal["adam", "yogi"] = "adam"
    server_lr: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3

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
    """One server-optimizer step; returns (new params, new m, new v)."""
    new_params, new_m, new_v = {}, {}, {}
    for k, theta in params.items():
        delta = aggregate[k].astype(np.float64) - theta
        m_k = beta1 * m[k] + (1 - beta1) * delta
        sq = delta * delta
        if optimizer == "adam":
            v_k = beta2 * v[k] + (1 - beta2) * sq
        else:  # yogi
            v_k = v[k] - (1 - beta2) * sq * np.sign(v[k] - sq)
        new_params[k] = (theta + lr * m_k / (np.sqrt(v_k) + tau)).astype(np.float32)
        new_m[k], new_v[k] = m_k, v_k
    return new_params, new_m, new_v


class FedOpt(Algorithm):
    """Only the server half differs from FedAvg: an Adam or Yogi step on the pseudo-gradient."""

    name = "fedopt"
    Params = FedOptParams
    coefficients = ("server_lr",)

    def init_state(self, model: Params) -> FedOptState:
        tau2 = self.params.tau**2
        return FedOptState(
            m={k: np.zeros(v.shape) for k, v in model.items()},
            v={k: np.full(v.shape, tau2) for k, v in model.items()},
        )

    def server_update(self, model: Params, state: FedOptState, aggregate: Aggregate) -> ServerUpdate:
        p = self.params
        params, m, v = fedopt_step(
            model, aggregate.model, state.m, state.v,
            optimizer=p.server_optimizer, lr=p.server_lr, beta1=p.beta1, beta2=p.beta2, tau=p.tau,
        )  # fmt: skip
        return ServerUpdate(params, FedOptState(m, v), step_applied=True)
