"""Aggregation as pure functions: screening client updates and reducing them to a weighted mean.

Workers reduce their own clients to one partial sum (in client-id order, float64),
and the server merges partial sums in worker order; the grouping changes only
float64 rounding, so results do not depend on scheduling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from fedref_ray.params import Params, add_scaled_, global_norm, is_finite, to_float32, zeros_like


def screen_update(client: Params, start: Params, clip_norm: float | None) -> Params | None:
    """Reject a non-finite update (None); optionally clip the update theta_k - theta_{r-1} to `clip_norm`."""
    if not is_finite(client):
        return None
    if clip_norm is None:
        return client
    delta = {k: client[k].astype("float64") - start[k] for k in client}
    norm = global_norm(delta)
    if norm <= clip_norm:
        return client
    scale = clip_norm / norm
    return to_float32({k: start[k] + scale * delta[k] for k in client})


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
    """A worker's reduction: sum_k n_k theta_k and sum_k n_k F_hat_k over its accepted clients."""

    weighted: Params | None = None
    weight: float = 0.0
    loss_sum: float = 0.0
    records: list[ClientRecord] = field(default_factory=list)

    def add(self, params: Params, n_k: int, loss: float) -> None:
        if self.weighted is None:
            self.weighted = zeros_like(params)
        add_scaled_(self.weighted, params, float(n_k))
        self.weight += n_k
        self.loss_sum += n_k * loss


def merge(partials: Sequence[PartialSum]) -> tuple[Params | None, float, list[ClientRecord]]:
    """theta_bar = sum_k w_k theta_k and F_bar = sum_k w_k F_hat_k, with w_k = n_k / n; None if nobody reported."""
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
    return to_float32({k: v / weight for k, v in total.items()}), loss_sum / weight, records
