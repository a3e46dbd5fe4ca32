"""SCAFFOLD (Karimireddy et al. 2020, "SCAFFOLD: Stochastic Controlled Averaging"), option II control variates.

Clients correct every local gradient by c - c_k, then set
c_k+ = c_k - c + (x - y) / (tau_k * eta_l) and upload dy = y - x and dc = c_k+ - c_k;
the server moves x by eta_g times the mean dy and c by (1/K) sum dc. BASELINES.md
[decision]: the mean of dy is n_k-weighted like FedAvg by default (`weighting=samples`);
`weighting=uniform` is the paper's plain mean. Momentum and weight decay act on the
corrected gradient. A client that processed no minibatch keeps its c_k.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fedref_ray.algorithms.base import (
    Aggregate,
    Algorithm,
    ClientContext,
    ClientHalf,
    ClientResult,
    ServerUpdate,
    check_choices,
)
from fedref_ray.params import Params, zeros_like


@dataclass(frozen=True)
class ScaffoldParams:
    """eta_g: the server learning rate; weighting: how the client updates dy are averaged."""

    eta_g: float = 1.0
    weighting: Literal["samples", "uniform"] = "samples"

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.eta_g > 0:
            raise ValueError(f"eta_g={self.eta_g!r} is not allowed: a number > 0")


@dataclass(frozen=True)
class ScaffoldState:
    """The server control variate c (float32, zeros at start)."""

    c: Params


class ScaffoldHalf(ClientHalf):
    """Adds c - c_k to every gradient; computes the new c_k and its change dc after training."""

    def __init__(self, algorithm: Algorithm, ctx: ClientContext) -> None:
        super().__init__(algorithm, ctx)
        self.c = ctx.received["c"]
        self.c_k = ctx.state["c_k"] if ctx.state is not None else self.c.new_zeros(self.c.shape)
        correction = self.c - self.c_k
        self.pairs = list(zip(ctx.model.parameters(), ctx.parameter_views(correction)))

    def after_backward(self) -> None:
        for p, corr in self.pairs:
            if p.grad is not None:
                p.grad.add_(corr)

    def finish(self, trained, steps: int) -> ClientResult:
        if steps == 0:
            c_new = self.c_k.clone()
        else:
            c_new = self.c_k - self.c + (self.ctx.start - trained) / (steps * self.ctx.lr)
        return ClientResult(tensors={"dc": c_new - self.c_k}, state={"c_k": c_new})


class Scaffold(Algorithm):
    """Stateful on both sides: the server's c is broadcast, each client's c_k persists across its rounds."""

    name = "scaffold"
    Params = ScaffoldParams
    coefficients = ("eta_g",)
    upload_tensors = {"dc": "sum"}
    client_state = ("c_k",)

    @property
    def model_weighting(self) -> str:  # type: ignore[override]
        return self.params.weighting

    def init_state(self, model: Params) -> ScaffoldState:
        return ScaffoldState(c=zeros_like(model, np.float32))

    def broadcast(self, model: Params, state: ScaffoldState) -> dict[str, Params]:
        return {"c": state.c}

    def client(self, ctx: ClientContext) -> ClientHalf:
        return ScaffoldHalf(self, ctx)

    def server_update(self, model: Params, state: ScaffoldState, aggregate: Aggregate) -> ServerUpdate:
        g, total = self.params.eta_g, aggregate.total_clients
        new_model = {
            k: (x.astype(np.float64) + g * (aggregate.model[k].astype(np.float64) - x)).astype(np.float32)
            for k, x in model.items()
        }
        dc = aggregate.tensors["dc"]
        new_c = {k: (c.astype(np.float64) + dc[k] / total).astype(np.float32) for k, c in state.c.items()}
        return ServerUpdate(new_model, ScaffoldState(new_c), step_applied=g != 1.0)
