"""FedProx (Li et al. 2020): FedAvg whose clients add mu/2 ||theta - theta_{r-1}||^2 to their loss."""

from __future__ import annotations

from fedref_ray.algorithms.base import ClientObjective, FedAvg


class FedProx(FedAvg):
    """Only the client half differs from FedAvg: the proximal term anchored at the global model."""

    name = "fedprox"

    def client_objective(self) -> ClientObjective:
        return ClientObjective(mu=self.cfg.mu, anchor="global")
