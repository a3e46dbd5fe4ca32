"""Aggregation as pure functions: screening client updates and reducing them to a weighted mean.

Workers reduce their own clients to one partial sum (in client-id order, float64),
and the server merges partial sums in worker order; the grouping changes only
float64 rounding, so results do not depend on scheduling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fedref_ray.params import Params, add_scaled_, to_float32, zeros_like

if TYPE_CHECKING:
    import torch


def screen_update(client: torch.Tensor, start: torch.Tensor, clip_norm: float | None) -> torch.Tensor | None:
    """Reject a non-finite model (None); optionally clip the update theta_k - theta_{r-1} to norm `clip_norm`.

    Works on flat parameter vectors (see FlatModel).
    """
    import torch

    low, high = torch.aminmax(client)  # NaN propagates and +-inf are extremes: one cheap pass
    if not (bool(torch.isfinite(low)) and bool(torch.isfinite(high))):
        return None
    if clip_norm is None:
        return client
    start64 = start.double()
    delta = client.double() - start64
    norm = float(torch.linalg.vector_norm(delta))
    if norm <= clip_norm:
        return client
    return (start64 + delta * (clip_norm / norm)).float()


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
    """A worker's reduction: sum_k n_k (theta_k - start) and sum_k n_k F_hat_k over its accepted clients."""

    weighted: Params | None = None
    weight: float = 0.0
    loss_sum: float = 0.0
    records: list[ClientRecord] = field(default_factory=list)


def merge(partials: Sequence[PartialSum], start: Params) -> tuple[Params | None, float, list[ClientRecord]]:
    """theta_bar = start + sum_k w_k (theta_k - start) = sum_k w_k theta_k and F_bar = sum_k w_k F_hat_k,
    with w_k = n_k / n, summed in float64 in worker order; None if nobody reported."""
    total: Params | None = None
    weight = loss_sum = 0.0
    records: list[ClientRecord] = []
    for part in partials:
        records.extend(part.records)
        if part.weighted is None:
            continue
        if total is None:
            total = zeros_like(part.weighted)
        add_scaled_(total, part.weighted, 1.0)
        weight += part.weight
        loss_sum += part.loss_sum
    records.sort(key=lambda r: r.client_id)
    if total is None:
        return None, float("nan"), records
    return to_float32({k: start[k] + v / weight for k, v in total.items()}), loss_sum / weight, records
