"""Shared helpers for the algorithm tests: tiny flat torch models, a ClientContext built as client_worker.py
builds it, and an Aggregate as server.py builds it. No expected number is computed here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from fedref_ray.algorithms import Aggregate, ClientContext
from fedref_ray.flat_model import FlatModel


def p32(*values: float) -> dict[str, np.ndarray]:
    """A one-key Params {"w": float32 vector}."""
    return {"w": np.array(values, dtype=np.float32)}


def linear(weight: Sequence[Sequence[float]], bias: Sequence[float] | None = None, device: str = "cpu") -> FlatModel:
    """torch.nn.Linear with the given weight (out x in) and optional bias, wrapped in a FlatModel."""
    w = torch.tensor(weight, dtype=torch.float32)
    module = torch.nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    with torch.no_grad():
        module.weight.copy_(w)
        if bias is not None:
            module.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return FlatModel(module, device)


def context(
    fm: FlatModel,
    *,
    broadcast: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    state: Mapping[str, Sequence[float]] | None = None,
    lr: float = 0.1,
    round_: int = 1,
    client_id: int = 0,
    num_samples: int = 1,
) -> ClientContext:
    """The context ClientWorker.train builds: start = the model's current weights (a separate tensor),
    the broadcast Params packed to flat tensors, the client state as flat float32 tensors."""
    start = fm.flat.clone()
    fm.load(start)
    received = {name: fm.pack(params) for name, params in (broadcast or {}).items()}
    own = None if state is None else {k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()}
    return ClientContext(
        round=round_,
        client_id=client_id,
        num_samples=num_samples,
        lr=lr,
        model=fm.model,
        flat=fm.flat,
        start=start,
        received=received,
        state=own,
        layout=fm,
    )


def aggregate(
    round_: int,
    model: Mapping[str, np.ndarray],
    mean_loss: float = 1.0,
    tensors: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    num_clients: int = 1,
    total_clients: int = 1,
) -> Aggregate:
    """An Aggregate for round `round_` whose reduced model is `model`."""
    return Aggregate(
        round=round_,
        model=dict(model),
        tensors=dict(tensors or {}),
        scalars={},
        mean_loss=mean_loss,
        num_clients=num_clients,
        total_clients=total_clients,
    )
