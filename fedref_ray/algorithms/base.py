"""The algorithm interface: a params dataclass, a server-state dataclass, a client half and a server half.

An algorithm says what the server sends each client besides the global model
(`broadcast`), how a client's local training differs from plain SGD (its
`ClientHalf`: a loss term, a gradient correction, what it uploads and which
state it keeps between the rounds it takes part in), how the uploads are
weighted when they are reduced, and how the server turns that aggregate into the
next global model and state (`server_update`). Built-in algorithms and a user's
own (`algorithm.name: "package.module:Class"`) use this interface alone.

The server half is plain numpy; the client half runs inside a worker on torch
tensors, and imports torch only there, so the server never loads it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from fedref_ray.params import Params

if TYPE_CHECKING:
    import torch

Weighting = Literal["samples", "uniform", "sum"]
WEIGHTINGS: tuple[str, ...] = ("samples", "uniform", "sum")


def check_choices(params: Any) -> None:
    """ValueError for a Literal field outside its choices or an int field given a non-integer (params dataclasses
    call this in __post_init__, so a directly built params object is checked like one read from YAML)."""
    hints = typing.get_type_hints(type(params))
    for f in dataclasses.fields(params):
        value, hint = getattr(params, f.name), hints[f.name]
        if typing.get_origin(hint) is Literal and value not in typing.get_args(hint):
            choices = ", ".join(map(str, typing.get_args(hint)))
            raise ValueError(f"{f.name}={value!r} is not allowed: one of {choices}")
        if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{f.name}={value!r} is not allowed: an integer")


@dataclass(frozen=True)
class NoParams:
    """The coefficients of an algorithm that has none."""


@dataclass(frozen=True)
class NoState:
    """The server state of an algorithm that carries nothing but the global model."""


@dataclass(frozen=True)
class ClientContext:
    """What a client's half sees in one round; every tensor is a flat float32 vector in the worker's model layout.

    `model` is the worker's network with its parameters as views into one flat buffer (`flat`), loaded
    with the global model `start` when training begins; `received` holds the algorithm's broadcast
    tensors; `state` the client's own tensors from the last round it took part in (None before that).
    """

    round: int
    client_id: int
    num_samples: int
    lr: float
    model: torch.nn.Module
    flat: torch.Tensor
    start: torch.Tensor
    received: Mapping[str, torch.Tensor]
    state: Mapping[str, torch.Tensor] | None
    layout: Any  # the worker's FlatModel: `views(flat)` and `parameter_views(flat)` read a flat vector by parameter
    spares: Any = None  # the worker's cache of frozen model copies, see `frozen`

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """`flat` as named, shaped views (parameters and float buffers)."""
        return self.layout.named_views(flat)

    def frozen(self, key: str, flat: torch.Tensor) -> torch.nn.Module:
        """A frozen copy of the network (eval mode, no gradients) holding the weights `flat`, e.g. the round's
        global model for distillation; one copy per `key` is kept by the worker and reloaded on every call."""
        return self.spares.frozen(key, flat)

    def parameter_views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """`flat` as shaped views aligned with `model.parameters()`, e.g. to correct gradients."""
        views = self.layout.named_views(flat)
        return [views[name] for name, _ in self.model.named_parameters()]


@dataclass
class ClientResult:
    """What a client's half hands back after training: extra uploads and its new state (None keeps no state)."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)
    state: dict[str, torch.Tensor] | None = None


class ClientHalf:
    """One client's part of one round; the default is plain local SGD (FedAvg's client).

    The shared SGD loop calls `loss_term` after every forward pass (its value is added to the
    cross-entropy and differentiated with it) and `after_backward` before every optimizer step;
    `finish` runs once on the trained model, whose update the worker uploads itself.
    """

    def __init__(self, algorithm: Algorithm, ctx: ClientContext) -> None:
        self.algorithm, self.ctx = algorithm, ctx

    def loss_term(self, logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """An extra term of the local objective on this minibatch, or None."""
        return None

    def after_backward(self) -> None:
        """Change the gradients (`p.grad`) before the optimizer step; nothing by default."""

    def finish(self, trained: torch.Tensor, steps: int) -> ClientResult:
        """Extra uploads and new client state from the trained model `trained` after `steps` minibatches."""
        return ClientResult()


@dataclass(frozen=True)
class Aggregate:
    """The round's uploads reduced as the algorithm asked, for the server half.

    `model` is start + the reduced model update (the weighted mean of the client models for
    `model_weighting="samples"`), `tensors` and `scalars` the reduced extra uploads,
    `mean_loss` the sample-weighted mean of the clients' training losses.
    """

    round: int
    model: Params
    tensors: Mapping[str, Params]
    scalars: Mapping[str, float]
    mean_loss: float
    num_clients: int
    total_clients: int


@dataclass(frozen=True)
class ServerUpdate:
    """The server half's result: the next global model, the next state, and whether a non-averaging step ran."""

    model: Params
    state: Any
    step_applied: bool = False


class Algorithm:
    """Base of every algorithm; as it stands it is FedAvg (McMahan et al. 2017).

    Subclasses set `name`, `Params` (a frozen dataclass of their own coefficients, validated in its
    `__post_init__` by raising ValueError), `coefficients` (the ones sweeps and reports vary), and
    override what differs. Upload weightings: "samples" (n_k-weighted mean), "uniform" (plain mean
    over reporting clients), "sum".
    """

    name: ClassVar[str] = "fedavg"
    Params: ClassVar[type] = NoParams
    coefficients: ClassVar[tuple[str, ...]] = ()
    model_weighting: ClassVar[Weighting] = "samples"
    upload_tensors: ClassVar[Mapping[str, Weighting]] = {}
    upload_scalars: ClassVar[Mapping[str, Weighting]] = {}
    client_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Any = None) -> None:
        self.params = self.Params() if params is None else params

    def upload_weightings(self) -> dict[str, Weighting]:
        """How each upload is reduced: "delta" (the model update) first, then the extra tensors and scalars."""
        return {"delta": self.model_weighting, **self.upload_tensors, **self.upload_scalars}

    def init_state(self, model: Params) -> Any:
        """The server state before round 1."""
        return NoState()

    def broadcast(self, model: Params, state: Any) -> dict[str, Params]:
        """Named tensors every sampled client receives besides the global model (each counts as bytes down)."""
        return {}

    def client(self, ctx: ClientContext) -> ClientHalf:
        """This round's client half for one client (runs inside a worker)."""
        return ClientHalf(self, ctx)

    def server_update(self, model: Params, state: Any, aggregate: Aggregate) -> ServerUpdate:
        """From the aggregate to the next global model and state; FedAvg takes the mean."""
        return ServerUpdate(aggregate.model, state)
