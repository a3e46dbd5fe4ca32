"""FedOpt (Reddi et al. 2021, Algorithm 2): the server treats theta_bar_r - theta_{r-1} as a pseudo-gradient.

FedAdam and FedYogi share first-moment updates and differ in the second moment;
moments start at m = 0, v = tau^2 as in the paper (no bias correction).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fedref_ray.algorithms.base import FedAvg, ServerState, ServerUpdate
from fedref_ray.params import Params


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


class FedOpt(FedAvg):
    """Only the server half differs from FedAvg: an Adam or Yogi step on the pseudo-gradient."""

    name = "fedopt"

    def init_state(self, params: Params) -> ServerState:
        tau2 = self.cfg.tau**2
        return ServerState(
            round=0,
            params=params,
            opt_m={k: np.zeros(v.shape) for k, v in params.items()},
            opt_v={k: np.full(v.shape, tau2) for k, v in params.items()},
        )

    def server_update(self, state: ServerState, aggregate: Params, mean_loss: float) -> ServerUpdate:
        assert state.opt_m is not None and state.opt_v is not None
        c = self.cfg
        params, m, v = fedopt_step(
            state.params, aggregate, state.opt_m, state.opt_v,
            optimizer=c.server_optimizer, lr=c.server_lr, beta1=c.beta1, beta2=c.beta2, tau=c.tau,
        )  # fmt: skip
        new = dataclasses.replace(state, round=state.round + 1, params=params, last_loss=mean_loss, opt_m=m, opt_v=v)
        return ServerUpdate(new, step_applied=True)
