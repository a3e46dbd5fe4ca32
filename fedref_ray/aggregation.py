"""Aggregation: screening client updates (UpdateScreen) and reducing each upload as its algorithm says (pure functions).

Workers reduce their own clients to one partial sum per upload (in client-id order,
float32), and the server merges partial sums in worker order in float64; the grouping
changes only rounding, so results do not depend on scheduling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from fedref_ray.params import Params, add_scaled_, to_float32, zeros_like

if TYPE_CHECKING:
    import torch


def is_finite(flat: torch.Tensor) -> bool:
    """No NaN or Inf in a flat tensor: one cheap pass (NaN propagates through min and max)."""
    import torch

    if flat.numel() == 0:
        return True
    low, high = torch.aminmax(flat)
    return bool(torch.isfinite(low)) and bool(torch.isfinite(high))


class UpdateScreen:
    """Screens a round's client models against its global model `start` (flat vectors, see FlatModel).

    Rejects (None) a non-finite model, or one whose update theta_k - theta_{r-1} is longer than `max_ratio`
    times max(||theta_{r-1}||, 1) (a diverged or corrupted client); optionally clips the update to
    `clip_norm`. The global model's float64 copy and its norm are computed once per round.
    """

    def __init__(self, start: torch.Tensor, clip_norm: float | None, max_ratio: float | None = None) -> None:
        import torch

        self.clip_norm = clip_norm
        self.start64 = start.double() if clip_norm is not None or max_ratio is not None else None
        self.max_norm = None
        if max_ratio is not None:
            self.max_norm = max_ratio * max(float(torch.linalg.vector_norm(self.start64)), 1.0)

    def __call__(self, client: torch.Tensor) -> torch.Tensor | None:
        import torch

        if not is_finite(client):
            return None
        if self.start64 is None:
            return client
        delta = client.double() - self.start64
        norm = float(torch.linalg.vector_norm(delta))
        if self.max_norm is not None and norm > self.max_norm:
            return None
        if self.clip_norm is None or norm <= self.clip_norm:
            return client
        return (self.start64 + delta * (self.clip_norm / norm)).float()


def client_weight(weighting: str, num_samples: int) -> float:
    """A client's weight in a reduction: n_k for "samples", 1 for "uniform" and "sum"."""
    return float(num_samples) if weighting == "samples" else 1.0


@dataclass(frozen=True)
class ClientRecord:
    """Per-client scalars of one round (one row of clients.parquet)."""

    round: int
    client_id: int
    samples: int
    processed: int
    loss: float
    seconds: float
    bytes_down: int
    bytes_up: int
    fault: str
    rejected: bool
    worker: str
    node: str


@dataclass
class PartialSum:
    """A worker's reduction over its accepted clients: per upload name, sum_k w_k t_k and sum_k w_k.

    "delta" is the model update theta_k - start; `scalars` are summed the same way; `loss_sum`
    and `samples` give the sample-weighted mean training loss; `states` the clients' new state.
    """

    sums: dict[str, Params] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    loss_sum: float = 0.0
    samples: float = 0.0
    records: list[ClientRecord] = field(default_factory=list)
    states: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)


@dataclass(frozen=True)
class Merged:
    """The round's uploads reduced over every worker; `model` is None when nobody reported."""

    model: Params | None
    tensors: dict[str, Params]
    scalars: dict[str, float]
    mean_loss: float
    num_clients: int
    records: list[ClientRecord]
    states: dict[int, dict[str, np.ndarray]]


def _reduce(total: Mapping[str, np.ndarray], weight: float, weighting: str) -> Params:
    return dict(total) if weighting == "sum" else {k: v / weight for k, v in total.items()}


def merge(partials: Sequence[PartialSum], start: Params, weightings: Mapping[str, str]) -> Merged:
    """theta_bar = start + sum_k w_k (theta_k - start) / sum_k w_k (= sum_k (n_k / n) theta_k for "samples"),
    every other upload reduced by its weighting, summed in float64 in worker order."""
    totals: dict[str, Params] = {}
    scalars: dict[str, float] = {}
    weights: dict[str, float] = {}
    loss_sum = samples = 0.0
    records: list[ClientRecord] = []
    states: dict[int, dict[str, np.ndarray]] = {}
    for part in partials:
        records.extend(part.records)
        states.update(part.states)
        for name, tensor in part.sums.items():
            if name not in totals:
                totals[name] = zeros_like(tensor)
            add_scaled_(totals[name], tensor, 1.0)
        for name, value in part.scalars.items():
            scalars[name] = scalars.get(name, 0.0) + value
        for name, w in part.weights.items():
            weights[name] = weights.get(name, 0.0) + w
        loss_sum += part.loss_sum
        samples += part.samples
    records.sort(key=lambda r: r.client_id)
    accepted = sum(not r.rejected for r in records)
    if "delta" not in totals:
        return Merged(None, {}, {}, float("nan"), 0, records, {})
    delta = _reduce(totals.pop("delta"), weights["delta"], weightings["delta"])
    model = to_float32({k: start[k] + v for k, v in delta.items()})
    tensors = {n: to_float32(_reduce(t, weights[n], weightings[n])) for n, t in totals.items()}
    reduced = {n: v if weightings[n] == "sum" else v / weights[n] for n, v in scalars.items()}
    return Merged(model, tensors, reduced, loss_sum / samples, accepted, records, states)
