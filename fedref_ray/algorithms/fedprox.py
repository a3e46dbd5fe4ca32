"""FedProx (Li et al. 2020): FedAvg whose clients add mu/2 ||theta - theta_{r-1}||^2 to their loss."""

from __future__ import annotations

from dataclasses import dataclass

from fedref_ray.algorithms.base import Algorithm, ClientContext, ClientHalf


@dataclass(frozen=True)
class FedProxParams:
    """mu: the proximal coefficient (METHOD.md, client step)."""

    mu: float = 0.01

    def __post_init__(self) -> None:
        if not self.mu >= 0:
            raise ValueError(f"mu={self.mu!r} is not allowed: a number >= 0")


class ProximalHalf(ClientHalf):
    """Adds mu/2 ||theta - a||^2 to the differentiated loss, a = `anchor` (a flat tensor); mu = 0 adds nothing."""

    def __init__(self, algorithm: Algorithm, ctx: ClientContext, mu: float, anchor) -> None:
        super().__init__(algorithm, ctx)
        self.mu = mu
        if mu > 0:
            views = ctx.views(anchor)
            self.pairs = [(p, views[name]) for name, p in ctx.model.named_parameters()]

    def loss_term(self, logits, x, y):
        if self.mu <= 0:
            return None
        return (self.mu / 2) * sum(((p - a) ** 2).sum() for p, a in self.pairs)


class FedProx(Algorithm):
    """Only the client half differs from FedAvg: the proximal term anchored at the global model."""

    name = "fedprox"
    Params = FedProxParams
    coefficients = ("mu",)

    def client(self, ctx: ClientContext) -> ClientHalf:
        return ProximalHalf(self, ctx, self.params.mu, ctx.start)
