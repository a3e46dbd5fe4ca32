"""FedCurv (Shoham et al. 2019, "Overcoming Forgetting in Federated Learning on Non-IID Data", arXiv 1910.07796).

EWC's penalty made federated. After local training client k computes the diagonal (empirical) Fisher
information of its trained model y_k,
    u_k = mean over its samples of (d log p(y | x; y_k) / d theta)^2,
and uploads y_k (the model update, as every client does), u_k and v_k = u_k * y_k. The server
reduces u and v by plain sums over the round's participants, U = sum_k u_k, V = sum_k v_k (its
state), and sends U and V with x. A client of the next round trains on
    F_k(y) + lam * sum_{j != k} u_j * (y - y_j)^2
        = F_k(y) + lam * ((U - u_k') * y^2 - 2 (V - v_k') * y) + const,
summed over parameters, where u_k', v_k' are the client's own terms if it took part in the round
U and V come from (its client state, kept with the round it sent them), else 0. The loss term
returns the right-hand form without the constant (its gradient is exact).

Traffic: 3 models up every round (y, u, v; counted by the server from `upload_tensors`), and 3
models down (x, U, V) from round 2 on. Round 1 has no previous round: U = V = 0, so nothing but x is
sent then (sending zeros would be counted bytes that carry nothing).

Decisions where the paper is vague (BASELINES.md states the same rule):
- The paper assumes every node takes part in every round; with client sampling U and V sum over the
  last round's participants, and the penalty uses only those. After a round in which nobody reported,
  the server keeps the older U and V (its half is not called), and a client that took part in that
  older round then does not subtract its own terms; no other case is affected.
- The Fisher is the exact per-sample empirical Fisher (true labels, squared per-sample gradients
  via torch.func.vmap, chunked), on the model in eval mode (dropout off, BatchNorm on its running
  statistics). It uses the first `fisher_samples` samples the client trained on: its first epoch's
  shuffled order, so all of its samples when n_k <= fisher_samples, a seeded random subset otherwise,
  and only what it processed when it stopped early. (The squared minibatch gradient, which some
  implementations use, is not the Fisher.) Buffers get u = 0, so they carry no penalty.
- (U - u_k') is clipped at 0 per entry: it is a sum of squares and only float rounding makes it
  negative.
- The model mean is n_k-weighted as in FedAvg, which the paper's FedCurv builds on.
- A client that processed no minibatch has no samples to compute a Fisher on: it uploads u = v = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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
from fedref_ray.params import Params

if TYPE_CHECKING:  # the client half runs in a worker; the server imports this module without torch
    import torch

CHUNK_FLOATS = 1 << 24  # per-sample gradients held at once: 64 MiB of float32


@dataclass(frozen=True)
class FedCurvParams:
    """lam: the penalty's coefficient; fisher_samples: at most this many samples enter a client's Fisher."""

    lam: float = 1.0
    fisher_samples: int = 1024

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.lam >= 0:
            raise ValueError(f"lam={self.lam!r} is not allowed: a number >= 0")
        if self.fisher_samples < 1:
            raise ValueError(f"fisher_samples={self.fisher_samples!r} is not allowed: an integer >= 1")


@dataclass(frozen=True)
class FedCurvState:
    """U = sum u_k and V = sum v_k over the last round's participants (None before anyone reported)."""

    U: Params | None = None
    V: Params | None = None


def empirical_fisher(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Per parameter, the mean over the samples (x, y) of the squared gradient of log p(y | x), in eval mode."""
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, grad, vmap

    was_training = model.training
    model.eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def nll(p, xs, ys):
        logits = functional_call(model, (p, buffers), (xs.unsqueeze(0),))
        return F.cross_entropy(logits, ys.unsqueeze(0))

    per_sample = vmap(grad(nll), in_dims=(None, 0, 0))
    size = max(1, sum(v.numel() for v in params.values()))
    chunk = max(1, CHUNK_FLOATS // size)
    sums = {k: torch.zeros_like(v) for k, v in params.items()}
    try:
        for begin in range(0, len(y), chunk):
            grads = per_sample(params, x[begin : begin + chunk], y[begin : begin + chunk])
            for k, g in grads.items():
                sums[k] += (g.detach() ** 2).sum(0)
    finally:
        model.train(was_training)
    return [sums[k] / len(y) for k, _ in model.named_parameters()]


class FedCurvHalf(ClientHalf):
    """Adds lam ((U - u_k') y^2 - 2 (V - v_k') y); keeps the samples it trains on for the Fisher at the end."""

    def __init__(self, algorithm: Algorithm, ctx: ClientContext) -> None:
        super().__init__(algorithm, ctx)
        self.lam = algorithm.params.lam
        self.cap = min(algorithm.params.fisher_samples, ctx.num_samples)  # the first epoch's samples at most
        self.kept: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.count = 0
        self.pairs: list[tuple[torch.nn.Parameter, torch.Tensor, torch.Tensor]] = []
        if "U" in ctx.received and self.lam > 0:
            U, V = ctx.received["U"], ctx.received["V"]
            if self.own_terms_count():
                U = (U - ctx.state["u_k"]).clamp(min=0.0)
                V = V - ctx.state["v_k"]
            self.pairs = list(zip(ctx.model.parameters(), ctx.parameter_views(U), ctx.parameter_views(V)))

    def own_terms_count(self) -> bool:
        """The client's stored u_k, v_k are in U and V: it sent them in the previous round."""
        state = self.ctx.state
        return state is not None and int(state["sent_round"][0]) == self.ctx.round - 1

    def loss_term(self, logits, x, y):
        if self.count < self.cap:
            take = min(len(y), self.cap - self.count)
            self.kept.append((x[:take].detach(), y[:take].detach()))
            self.count += take
        if not self.pairs:
            return None
        return self.lam * sum((a * p * p - 2 * b * p).sum() for p, a, b in self.pairs)

    def finish(self, trained, steps: int) -> ClientResult:
        import torch

        u = trained.new_zeros(trained.shape)
        if self.kept:
            xs = torch.cat([x for x, _ in self.kept])
            ys = torch.cat([y for _, y in self.kept])
            for view, fisher in zip(self.ctx.parameter_views(u), empirical_fisher(self.ctx.model, xs, ys)):
                view.copy_(fisher)
        self.kept = []
        v = u * trained
        sent = torch.full_like(u, float(self.ctx.round))
        return ClientResult(tensors={"u": u, "v": v}, state={"u_k": u, "v_k": v, "sent_round": sent})


class FedCurv(Algorithm):
    """U and V are server state and broadcast; each client keeps its last u_k, v_k and the round it sent them."""

    name = "fedcurv"
    Params = FedCurvParams
    coefficients = ("lam",)
    upload_tensors = {"u": "sum", "v": "sum"}
    client_state = ("u_k", "v_k", "sent_round")

    def init_state(self, model: Params) -> FedCurvState:
        return FedCurvState()

    def broadcast(self, model: Params, state: FedCurvState) -> dict[str, Params]:
        return {} if state.U is None else {"U": state.U, "V": state.V}

    def client(self, ctx: ClientContext) -> ClientHalf:
        return FedCurvHalf(self, ctx)

    def server_update(self, model: Params, state: FedCurvState, aggregate: Aggregate) -> ServerUpdate:
        U = {k: np.asarray(v, np.float32).copy() for k, v in aggregate.tensors["u"].items()}
        V = {k: np.asarray(v, np.float32).copy() for k, v in aggregate.tensors["v"].items()}
        return ServerUpdate(aggregate.model, FedCurvState(U, V))
