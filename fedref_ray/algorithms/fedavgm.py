"""FedAvgM (Hsu, Qi and Brown 2019, "Measuring the Effects of Non-Identical Data Distribution for Federated
Visual Classification", arXiv:1909.06335, section 3): FedAvg with momentum on the server.

The server treats the n_k-weighted mean of the client models, theta_bar, minus the global model x as
a pseudo-gradient d = theta_bar - x (`aggregate.model - model`: the `samples` weighting, as FedAvg) and
keeps a momentum buffer v (zeros before round 1, float64):

    v <- beta * v + d,        x <- x + server_lr * v.

beta = 0 and server_lr = 1 is FedAvg exactly (x + (theta_bar - x) = theta_bar). The paper writes the
update with Delta = x - theta_bar ("v <- beta v + Delta w; w <- w - v"), i.e. the opposite sign and
server_lr = 1; Flower's `FedAvgM` (framework/py/flwr/server/strategy/fedavgm.py, aggregate_fit) does the
same with a server learning rate: it keeps m <- beta m + g with g = x - theta_bar = -d and m = g in
round 1, then x <- x - server_lr * m. By induction m = -v in every round (m_1 = -d_1 = -v_1, and
m_t = beta m_{t-1} - d_t = -(beta v_{t-1} + d_t) = -v_t), so x - server_lr m = x + server_lr v:
the same update.

`step_applied` is False for beta = 0 and server_lr = 1 (FedAvg: the new model is the aggregate
itself, bit for bit), True otherwise, as SCAFFOLD reports eta_g != 1. Decisions: the buffer is
float64 and the model is rounded to float32 once per round (the model travels as float32); a round
nobody reports in leaves x and v unchanged (the server does not call `server_update`), as in
Flower, where such a round does not aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedref_ray.algorithms.base import Aggregate, Algorithm, ServerUpdate
from fedref_ray.params import Params, zeros_like


@dataclass(frozen=True)
class FedAvgMParams:
    """beta: server momentum in [0, 1); server_lr: the server's step size on the momentum, > 0."""

    beta: float = 0.9
    server_lr: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.beta < 1:
            raise ValueError(f"beta={self.beta!r} is not allowed: a number in [0, 1)")
        if not self.server_lr > 0:
            raise ValueError(f"server_lr={self.server_lr!r} is not allowed: a number > 0")


@dataclass(frozen=True)
class FedAvgMState:
    """The server's momentum buffer v (float64, one array per parameter; zeros before round 1)."""

    velocity: Params


class FedAvgM(Algorithm):
    """Only the server half differs from FedAvg: momentum on the pseudo-gradient theta_bar - x."""

    name = "fedavgm"
    Params = FedAvgMParams
    coefficients = ("beta", "server_lr")

    def init_state(self, model: Params) -> FedAvgMState:
        return FedAvgMState(zeros_like(model))

    def server_update(self, model: Params, state: FedAvgMState, aggregate: Aggregate) -> ServerUpdate:
        p = self.params
        new_model, velocity = {}, {}
        for k, x in model.items():
            x64 = x.astype(np.float64)
            d = aggregate.model[k].astype(np.float64) - x64
            velocity[k] = p.beta * state.velocity[k] + d
            new_model[k] = (x64 + p.server_lr * velocity[k]).astype(np.float32)
        plain = p.beta == 0 and p.server_lr == 1  # FedAvg: x + (theta_bar - x) is theta_bar, taken as it is
        if plain:
            new_model = {k: np.array(aggregate.model[k], dtype=np.float32) for k in model}
        return ServerUpdate(new_model, FedAvgMState(velocity), step_applied=not plain)
