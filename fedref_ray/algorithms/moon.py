"""MOON (Li, He and Song 2021, "Model-Contrastive Federated Learning").

Only the client half differs from FedAvg. Each local step adds mu * l_con to the cross-entropy, with
  l_con = -log( exp(sim(z, z_g)/tau) / (exp(sim(z, z_g)/tau) + exp(sim(z, z_p)/tau)) ),
z, z_g, z_p the minibatch's representations under the model being trained, the round's global model
and the client's previous local model (both frozen, no gradients), sim the cosine similarity, and
l_con averaged over the minibatch: the authors' code takes the cross-entropy of the logits
[sim(z, z_g), sim(z, z_p)] / tau against label 0 with the mean reduction
(github.com/QinbinLi/MOON, main.py, lines 297-311, nn.CosineSimilarity(dim=-1) on line 279).

Client state "prev": the client's model after its last local training (`finish` keeps the trained
model); before a client's first round it is the round's global model, so then z_p = z_g, l_con is the
constant log 2 and adds no gradient (the authors' code has no previous model in round 1 at all, so its
term is the constant 0 there: the same gradient). The paper's code keeps one previous model per client
(model_buffer_size = 1 by default), as here.

BASELINES.md [decision], representation: the input to the model's last linear layer, read through the
model's `representation(x)` method (fedref_ray.models); a model without it is a UserError when the first
client starts. The authors' networks put a projection head (two linear layers, ReLU between) before the
output layer, so their contrasted features are also the input to the last linear layer; the built-in
models have no such head and one is not offered here (it would change the network and its parameter
count); a user model can include one and expose its output as `representation`. The representation of
the model being trained is a second forward pass; in training mode it runs on copies of the model's
buffers, so BatchNorm statistics are updated once per step as without MOON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fedref_ray.algorithms.base import Algorithm, ClientContext, ClientHalf, ClientResult, check_choices

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class MoonParams:
    """mu: weight of the model-contrastive term; tau: its temperature."""

    mu: float = 1.0
    tau: float = 0.5

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.mu >= 0:
            raise ValueError(f"mu={self.mu!r} is not allowed: a number >= 0")
        if not self.tau > 0:
            raise ValueError(f"tau={self.tau!r} is not allowed: a number > 0")


def contrastive_term(z: torch.Tensor, z_global: torch.Tensor, z_prev: torch.Tensor, tau: float) -> torch.Tensor:
    """l_con averaged over the batch: cross-entropy of [sim(z, z_g), sim(z, z_p)] / tau against the first entry."""
    import torch  # the client half runs in a worker: torch is imported there only
    import torch.nn.functional as F

    z, z_global, z_prev = z.flatten(1), z_global.detach().flatten(1), z_prev.detach().flatten(1)
    positive = F.cosine_similarity(z, z_global, dim=-1)
    negative = F.cosine_similarity(z, z_prev, dim=-1)
    logits = torch.stack([positive, negative], dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(len(z), dtype=torch.long, device=z.device))


class ModelContrastiveHalf(ClientHalf):
    """Adds mu * l_con on every minibatch; keeps the trained model as the client's next previous model."""

    def __init__(self, algorithm: Algorithm, ctx: ClientContext) -> None:
        super().__init__(algorithm, ctx)
        from fedref_ray.models import check_representation

        self.params = algorithm.params
        check_representation(ctx.model, needed_by=f"algorithm.name={algorithm.name!r}")
        if self.params.mu > 0:
            self.global_model = ctx.frozen("global", ctx.start)
            self.prev_model = ctx.frozen("prev", ctx.start if ctx.state is None else ctx.state["prev"])

    def _local_representation(self, x: torch.Tensor) -> torch.Tensor:
        """z under the model being trained; in training mode its buffers are swapped for copies during this
        second pass, so BatchNorm statistics move once per step and the first pass's graph stays valid."""
        from fedref_ray.models import representation

        model = self.ctx.model
        if not model.training:
            return representation(model, x)
        originals = [
            (module, name, buffer)
            for module in model.modules()
            for name, buffer in module.named_buffers(recurse=False)
            if buffer is not None
        ]
        for module, name, buffer in originals:
            setattr(module, name, buffer.detach().clone())
        try:
            return representation(model, x)
        finally:
            for module, name, buffer in originals:
                setattr(module, name, buffer)

    def loss_term(self, logits, x, y):
        if self.params.mu <= 0:
            return None
        import torch

        from fedref_ray.models import representation

        z = self._local_representation(x)
        with torch.no_grad():
            z_global = representation(self.global_model, x)
            z_prev = representation(self.prev_model, x)
        return self.params.mu * contrastive_term(z, z_global, z_prev, self.params.tau)

    def finish(self, trained, steps: int) -> ClientResult:
        return ClientResult(state={"prev": trained.detach().clone()})


class Moon(Algorithm):
    """FedAvg's server with the model-contrastive client; the previous local model is client state."""

    name = "moon"
    Params = MoonParams
    coefficients = ("mu", "tau")
    client_state = ("prev",)

    def client(self, ctx: ClientContext) -> ClientHalf:
        return ModelContrastiveHalf(self, ctx)
