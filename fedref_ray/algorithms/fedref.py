"""FedRef (Yoon et al. 2025, arXiv 2506.23210): FedAvg plus Bayesian fine-tuning toward a reference model.

The reference model is a weighted mean of the last `rho` global models; the server
pulls the aggregate toward it (or toward its last move, prior='delta') after a
warm-up of `rho` rounds, optionally only when the clients' cost went up (the gate).
"""

from __future__ import annotations

import dataclasses

from fedref_ray.algorithms.base import ClientObjective, FedAvg, ServerState, ServerUpdate
from fedref_ray.algorithms.reference import delta_prior_mean, fine_tune, reference_model
from fedref_ray.params import Params


class FedRef(FedAvg):
    """Client half: optional proximal term toward the global or reference model; server half: METHOD.md steps 3 to 6."""

    name = "fedref"

    def client_objective(self) -> ClientObjective:
        return ClientObjective(mu=self.cfg.mu, anchor=self.cfg.client_prior)

    def init_state(self, params: Params) -> ServerState:
        history = (params,)
        return ServerState(
            round=0, params=params, history=history, reference=reference_model(history, self.cfg.ref_weighting)
        )

    def should_fine_tune(self, state: ServerState, mean_loss: float) -> bool:
        """Warm-up (first rho rounds are FedAvg) and the optional drift gate."""
        if state.round + 1 <= self.cfg.rho:
            return False
        if self.cfg.gate_delta is None:
            return True
        return state.last_loss is not None and mean_loss - state.last_loss > self.cfg.gate_delta

    def server_update(self, state: ServerState, aggregate: Params, mean_loss: float) -> ServerUpdate:
        c = self.cfg
        assert state.reference is not None
        applied = self.should_fine_tune(state, mean_loss)
        params = aggregate
        if applied:
            if c.prior == "anchor":
                prior_mean = state.reference
            else:
                assert state.prev_reference is not None
                prior_mean = delta_prior_mean(state.params, state.reference, state.prev_reference)
            params = fine_tune(aggregate, prior_mean, c.lam, c.eta_s, c.step)
        history = (params, *state.history)[: c.rho]
        new = dataclasses.replace(
            state,
            round=state.round + 1,
            params=params,
            last_loss=mean_loss,
            history=history,
            reference=reference_model(history, c.ref_weighting),
            prev_reference=state.reference,
        )
        return ServerUpdate(new, step_applied=applied)
