"""FedNTD (Lee et al. 2022, "Preservation of the Global Knowledge by Not-True Distillation in Federated Learning").

Stateless; only the client half differs from FedAvg. Each local step adds
beta * KL(q_g || q_l) to the cross-entropy, where q_l and q_g are the softmaxes at temperature
tau of the local model's and the round's global model's logits on the same minibatch with the
true class removed (the "not-true" logits; the global model is a frozen copy of the round's start,
evaluated without gradients). The KL is summed over the C - 1 not-true classes and averaged over
the minibatch (torch's reduction="batchmean"), as the authors' code does
(github.com/Lee-Gihun/FedNTD, algorithms/fedntd/criterion.py, line 17: nn.KLDivLoss(reduction="batchmean")).

BASELINES.md [decision], tau^2: the authors' code multiplies the KL by tau^2 (criterion.py, line 42,
`loss = (self.tau ** 2) * self.KLDiv(pred_probs, dg_probs)`), the usual knowledge-distillation
scaling, which BASELINES.md's statement of the loss leaves out. `tau_squared=true` (the default) follows
the code, `tau_squared=false` the unscaled KL; with the paper's default tau = 1 the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fedref_ray.algorithms.base import Algorithm, ClientContext, ClientHalf, check_choices

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class FedNTDParams:
    """beta: weight of the not-true distillation term; tau: its temperature; tau_squared: scale the KL by tau^2."""

    beta: float = 1.0
    tau: float = 1.0
    tau_squared: bool = True

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.beta >= 0:
            raise ValueError(f"beta={self.beta!r} is not allowed: a number >= 0")
        if not self.tau > 0:
            raise ValueError(f"tau={self.tau!r} is not allowed: a number > 0")
        if not isinstance(self.tau_squared, bool):
            raise ValueError(f"tau_squared={self.tau_squared!r} is not allowed: true or false")


def not_true_logits(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The (B, C) logits without each row's true class y, as (B, C - 1) in class order."""
    import torch  # the client half runs in a worker: torch is imported there only

    keep = torch.ones_like(logits, dtype=torch.bool)
    keep[torch.arange(len(y), device=logits.device), y] = False
    return logits[keep].view(logits.shape[0], logits.shape[1] - 1)


def ntd_term(logits: torch.Tensor, global_logits: torch.Tensor, y: torch.Tensor, tau: float, tau_squared: bool):
    """KL(q_g^tau || q_l^tau) over the not-true classes, summed over classes and averaged over the batch,
    times tau^2 when `tau_squared`; gradients flow through `logits` only."""
    import torch.nn.functional as F

    log_q_local = F.log_softmax(not_true_logits(logits, y) / tau, dim=1)
    q_global = F.softmax(not_true_logits(global_logits.detach(), y) / tau, dim=1)
    kl = F.kl_div(log_q_local, q_global, reduction="batchmean")
    return kl * tau**2 if tau_squared else kl


class NotTrueDistillationHalf(ClientHalf):
    """Adds beta * NTD(local logits, global logits) on every minibatch; the global model is frozen at the start."""

    def __init__(self, algorithm: Algorithm, ctx: ClientContext) -> None:
        super().__init__(algorithm, ctx)
        self.params = algorithm.params
        self.global_model = ctx.frozen("global", ctx.start) if self.params.beta > 0 else None

    def loss_term(self, logits, x, y):
        if self.global_model is None:
            return None
        import torch

        with torch.no_grad():
            global_logits = self.global_model(x)
        return self.params.beta * ntd_term(logits, global_logits, y, self.params.tau, self.params.tau_squared)


class FedNTD(Algorithm):
    """FedAvg's server with the not-true distillation client; nothing extra is sent or uploaded."""

    name = "fedntd"
    Params = FedNTDParams
    coefficients = ("beta", "tau")

    def client(self, ctx: ClientContext) -> ClientHalf:
        return NotTrueDistillationHalf(self, ctx)
