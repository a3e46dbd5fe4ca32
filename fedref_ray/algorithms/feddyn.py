"""FedDyn (Acar et al. 2021, "Federated Learning Based on Dynamic Regularization", ICLR 2021, Algorithm 1).

Client k keeps g_k (its gradient term, zeros until it first takes part: client state) and trains on
    F_k(y) - <g_k, y> + (alpha / 2) ||y - x||^2,
then sets g_k <- g_k - alpha (y - x) (the first-order optimality condition of that objective) and
uploads y (the model update y - x, as every client does). The server keeps h (zeros at start):
    h <- h - alpha (1/K) sum_{k in S} (y_k - x),    K = all clients (aggregate.total_clients),
    x <- mean_{k in S} y_k - h / alpha.

Decisions where the paper leaves room (BASELINES.md agrees with the paper's rule):
- `weighting` (BASELINES.md [decision]): "uniform" (default) is the paper's plain mean over the
  participants; its derivation (h = (1/K) sum_k g_k, x the point the clients' optima agree on) uses
  that mean. The sum in the h update is then derived on the server as num_clients * (mean y - x), so
  nothing but y travels: 1 model down, 1 up, as in the paper. "samples" takes the n_k-weighted mean
  like FedAvg; the plain sum then needs a second reduction of the same update, uploaded as "dy"
  (weighting "sum") and counted as a second model up. That is what a deployment with secure
  aggregation pays; a server that sees each y_k could form both from one upload.
- alpha defaults to 0.01, the value of the authors' released code (the paper tunes it in
  {0.1, 0.01, 0.001}). That code also divides alpha by each client's relative data size
  (n_k / mean n) and adds weight decay; neither is in the paper's Algorithm 1, so neither is done
  here (`training.weight_decay` still applies as for every algorithm).
- The correction acts on parameters. BatchNorm running statistics (state-dict entries named
  `*running_mean`, `*running_var`) are averaged as in FedAvg: h stays 0 there, since a shifted
  running variance can turn negative. The server half sees names only, so any other float buffer of a
  user model is treated as a parameter that has no gradient.
- A client that processed no minibatch uploads y = x and keeps g_k.
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

STATISTICS = ("running_mean", "running_var")


def is_statistic(name: str) -> bool:
    """A BatchNorm running statistic, which FedDyn averages without correction."""
    return name.endswith(STATISTICS)


@dataclass(frozen=True)
class FedDynParams:
    """alpha: the dynamic regulariser's coefficient; weighting: how the client models are averaged."""

    alpha: float = 0.01
    weighting: Literal["samples", "uniform"] = "uniform"

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.alpha > 0:
            raise ValueError(f"alpha={self.alpha!r} is not allowed: a number > 0")


@dataclass(frozen=True)
class FedDynState:
    """The server's h (float32, zeros at start), (1/K) sum_k g_k over all clients."""

    h: Params


class FedDynHalf(ClientHalf):
    """Adds -<g_k, y> + alpha/2 ||y - x||^2 to the loss; g_k <- g_k - alpha (y - x) after training."""

    def __init__(self, algorithm: Algorithm, ctx: ClientContext) -> None:
        super().__init__(algorithm, ctx)
        self.alpha = algorithm.params.alpha
        self.g_k = ctx.state["g_k"] if ctx.state is not None else ctx.start.new_zeros(ctx.start.shape)
        self.triples = list(zip(ctx.model.parameters(), ctx.parameter_views(self.g_k), ctx.parameter_views(ctx.start)))
        self.mask = ctx.start.new_zeros(ctx.start.shape)
        for view in ctx.parameter_views(self.mask):
            view.fill_(1.0)

    def loss_term(self, logits, x, y):
        linear = sum((g * p).sum() for p, g, _ in self.triples)
        quadratic = sum(((p - a) ** 2).sum() for p, _, a in self.triples)
        return (self.alpha / 2) * quadratic - linear

    def finish(self, trained, steps: int) -> ClientResult:
        delta = trained - self.ctx.start
        g_new = self.g_k - self.alpha * delta * self.mask
        tensors = {"dy": delta.clone()} if self.algorithm.params.weighting == "samples" else {}
        return ClientResult(tensors=tensors, state={"g_k": g_new})


class FedDyn(Algorithm):
    """Stateful on both sides: each client's g_k persists across its rounds, the server's h across rounds."""

    name = "feddyn"
    Params = FedDynParams
    coefficients = ("alpha",)
    client_state = ("g_k",)

    @property
    def model_weighting(self) -> str:  # type: ignore[override]
        return self.params.weighting

    @property
    def upload_tensors(self) -> dict[str, str]:  # type: ignore[override]
        return {"dy": "sum"} if self.params.weighting == "samples" else {}

    def init_state(self, model: Params) -> FedDynState:
        return FedDynState(h=zeros_like(model, np.float32))

    def client(self, ctx: ClientContext) -> ClientHalf:
        return FedDynHalf(self, ctx)

    def server_update(self, model: Params, state: FedDynState, aggregate: Aggregate) -> ServerUpdate:
        alpha, total = self.params.alpha, aggregate.total_clients
        new_model, new_h = {}, {}
        for k, x in model.items():
            mean = aggregate.model[k].astype(np.float64)
            if is_statistic(k):
                new_model[k], new_h[k] = mean.astype(np.float32), np.zeros(np.shape(x), np.float32)
                continue
            if self.params.weighting == "samples":
                summed = aggregate.tensors["dy"][k].astype(np.float64)
            else:
                summed = aggregate.num_clients * (mean - x.astype(np.float64))
            h = state.h[k].astype(np.float64) - (alpha / total) * summed
            new_model[k], new_h[k] = (mean - h / alpha).astype(np.float32), h.astype(np.float32)
        return ServerUpdate(new_model, FedDynState(new_h), step_applied=True)
