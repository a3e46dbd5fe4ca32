"""FedRef (Yoon et al. 2025, arXiv 2506.23210): FedAvg plus Bayesian fine-tuning toward a reference model.

The reference model is a weighted mean of the last `rho` global models; the server
pulls the aggregate toward it (or toward its last move, prior='delta') after a
warm-up of `rho` rounds, optionally only when the clients' cost went up (the gate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from fedref_ray.algorithms.base import Aggregate, Algorithm, ClientContext, ClientHalf, ServerUpdate, check_choices
from fedref_ray.algorithms.fedprox import ProximalHalf
from fedref_ray.algorithms.reference import delta_prior_mean, fine_tune, reference_model
from fedref_ray.params import Params


@dataclass(frozen=True)
class FedRefParams:
    """METHOD.md's FedRef coefficients and the [decision] options that keep both readings runnable."""

    mu: float = 0.0
    lam: float = 0.1
    eta_s: float = 1.0
    rho: int = 3
    ref_weighting: Literal["linear", "uniform"] = "linear"
    prior: Literal["anchor", "delta"] = "anchor"
    client_prior: Literal["global", "reference"] = "global"
    gate_delta: float | None = None
    step: Literal["closed_form", "gradient"] = "closed_form"

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.mu >= 0:
            raise ValueError(f"mu={self.mu!r} is not allowed: a number >= 0")
        if not self.lam >= 0:
            raise ValueError(f"lam={self.lam!r} is not allowed: a number >= 0")
        if not self.eta_s > 0:
            raise ValueError(f"eta_s={self.eta_s!r} is not allowed: a number > 0")
        if self.gate_delta is not None and not math.isfinite(self.gate_delta):
            raise ValueError(f"gate_delta={self.gate_delta!r} is not allowed: null or a finite number")
        if not self.rho >= 1:
            raise ValueError(f"rho={self.rho!r} is not allowed: an integer >= 1")


@dataclass(frozen=True)
class FedRefState:
    """H_r (newest first), theta_ref_r, theta_ref_{r-1} and the last round's mean client loss (for the gate)."""

    history: tuple[Params, ...]
    reference: Params
    prev_reference: Params | None = None
    last_loss: float | None = None


class FedRef(Algorithm):
    """Client half: optional proximal term toward the global or reference model; server half: METHOD.md steps 3 to 6."""

    name = "fedref"
    Params = FedRefParams
    coefficients = ("lam", "mu")

    def init_state(self, model: Params) -> FedRefState:
        history = (model,)
        return FedRefState(history=history, reference=reference_model(history, self.params.ref_weighting))

    def broadcast(self, model: Params, state: FedRefState) -> dict[str, Params]:
        """The reference model travels only when clients are pulled toward it."""
        if self.params.mu > 0 and self.params.client_prior == "reference":
            return {"anchor": state.reference}
        return {}

    def client(self, ctx: ClientContext) -> ClientHalf:
        anchor = ctx.received["anchor"] if "anchor" in ctx.received else ctx.start
        return ProximalHalf(self, ctx, self.params.mu, anchor)

    def should_fine_tune(self, state: FedRefState, round_: int, mean_loss: float) -> bool:
        """Warm-up (first rho rounds are FedAvg) and the optional drift gate."""
        if round_ <= self.params.rho:
            return False
        if self.params.gate_delta is None:
            return True
        return state.last_loss is not None and mean_loss - state.last_loss > self.params.gate_delta

    def server_update(self, model: Params, state: FedRefState, aggregate: Aggregate) -> ServerUpdate:
        p = self.params
        applied = self.should_fine_tune(state, aggregate.round, aggregate.mean_loss)
        params = aggregate.model
        if applied:
            if p.prior == "anchor":
                prior_mean = state.reference
            else:
                previous = state.prev_reference if state.prev_reference is not None else state.reference  # no move yet
                prior_mean = delta_prior_mean(model, state.reference, previous)
            params = fine_tune(aggregate.model, prior_mean, p.lam, p.eta_s, p.step)
        history = (params, *state.history)[: p.rho]
        new = FedRefState(
            history=history,
            reference=reference_model(history, p.ref_weighting),
            prev_reference=state.reference,
            last_loss=aggregate.mean_loss,
        )
        return ServerUpdate(params, new, step_applied=applied)
