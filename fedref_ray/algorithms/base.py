"""What every algorithm shares: the server state, the client objective, and FedAvg's two halves.

An algorithm is a client half (`client_objective`: the proximal coefficient and
which model anchors it) and a server half (`server_update`: from the aggregate
to the next global model). Neither half knows about Ray.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from fedref_ray.config import AlgorithmConfig
from fedref_ray.params import Params

Anchor = Literal["none", "global", "reference"]


@dataclass(frozen=True)
class ClientObjective:
    """h_k(theta) = F_k(theta) + mu/2 ||theta - a||^2, with `a` named by `anchor` (METHOD.md, client step)."""

    mu: float = 0.0
    anchor: Anchor = "none"


@dataclass(frozen=True)
class ServerState:
    """Everything the server carries from round to round; plain arrays and scalars, so it checkpoints as such.

    `history` is FedRef's H_r (newest first), `reference` theta_ref_r and
    `prev_reference` theta_ref_{r-1}; `opt_m`/`opt_v` are FedOpt's moments.
    """

    round: int
    params: Params
    last_loss: float | None = None
    history: tuple[Params, ...] = ()
    reference: Params | None = None
    prev_reference: Params | None = None
    opt_m: Params | None = None
    opt_v: Params | None = None


@dataclass(frozen=True)
class ServerUpdate:
    """The server half's result: the new state and whether a non-averaging step was applied."""

    state: ServerState
    step_applied: bool = False


class FedAvg:
    """FedAvg (McMahan et al. 2017): plain local SGD, the server takes the weighted mean."""

    name = "fedavg"

    def __init__(self, cfg: AlgorithmConfig) -> None:
        self.cfg = cfg

    def client_objective(self) -> ClientObjective:
        return ClientObjective()

    def init_state(self, params: Params) -> ServerState:
        return ServerState(round=0, params=params)

    def server_update(self, state: ServerState, aggregate: Params, mean_loss: float) -> ServerUpdate:
        return ServerUpdate(dataclasses.replace(state, round=state.round + 1, params=aggregate, last_loss=mean_loss))
