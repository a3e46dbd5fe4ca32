"""Label-skewed partition: each class is split among clients by Dirichlet proportions."""

from __future__ import annotations

import heapq

import numpy as np

from fedref_ray.data.partition._common import (
    as_1d,
    require_int,
    require_positive,
    split_by_owner,
)
from fedref_ray.errors import UserError

# Stop redrawing once the expected number of successful draws left falls below this.
# Short clients per draw are roughly Poisson, so one draw succeeds with chance about
# exp(-mean short clients); with thousands of clients and small alpha that is ~0 and
# the remaining draws would only cost time.
_HOPELESS = 0.01


def dirichlet_partition(
    labels: np.ndarray,
    num_clients: int,
    alpha: float,
    rng: np.random.Generator,
    min_size: int = 1,
    max_retries: int = 100,
) -> list[np.ndarray]:
    """Split each class among clients by proportions drawn from Dir(alpha) (Hsu et al., 2019).

    Small alpha gives each client few classes, large alpha approaches IID. Draws are
    repeated until every client holds >= min_size samples; after max_retries draws, or
    earlier once further draws are unlikely to succeed, the draw with the smallest
    shortfall is repaired by moving samples from the largest clients.
    """
    labels = as_1d("partition labels", labels)
    num_samples = len(labels)
    num_clients = require_int("partition.num_clients", num_clients, 1, None, "an integer >= 1")
    alpha = require_positive("partition.alpha", alpha)
    min_size = require_int("partition.min_size", min_size, 1, None, "an integer >= 1")
    max_retries = require_int("partition.max_retries", max_retries, 1, None, "an integer >= 1")
    if num_clients * min_size > num_samples:
        raise UserError(
            f"partition.num_clients={num_clients}: must be at most {num_samples // min_size} "
            f"so that each client gets min_size={min_size} of the {num_samples} training samples"
        )
    classes = _shuffled_class_indices(labels, rng)
    owner = np.empty(num_samples, dtype=np.int64)
    best_owner, best_missing, total_short = owner, num_samples + 1, 0
    for attempt in range(1, max_retries + 1):
        for class_indices in classes:
            owner[class_indices] = _dirichlet_owners(len(class_indices), num_clients, alpha, rng)
        shortfall = np.maximum(min_size - np.bincount(owner, minlength=num_clients), 0)
        if not shortfall.any():
            return split_by_owner(owner, num_clients)
        if shortfall.sum() < best_missing:
            best_owner, best_missing = owner.copy(), int(shortfall.sum())
        total_short += int(np.count_nonzero(shortfall))
        if (max_retries - attempt) * np.exp(-total_short / attempt) < _HOPELESS:
            break
    return split_by_owner(_fill_small_clients(best_owner, num_clients, min_size), num_clients)


def _shuffled_class_indices(labels: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Group the sample indices by label, each group in random order."""
    _, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse)
    return [rng.permutation(group) for group in np.split(order, np.cumsum(counts)[:-1])]


def _dirichlet_owners(class_size: int, num_clients: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """Assign one class's (already shuffled) samples to clients in Dir(alpha) proportions."""
    proportions = rng.dirichlet(np.full(num_clients, alpha))
    bounds = np.minimum((np.cumsum(proportions) * class_size).astype(np.int64), class_size)
    bounds[-1] = class_size
    counts = np.diff(bounds, prepend=0)
    return np.repeat(np.arange(num_clients, dtype=np.int64), counts)


def _fill_small_clients(owner: np.ndarray, num_clients: int, min_size: int) -> np.ndarray:
    """Move samples one at a time from the currently largest client to clients below min_size.

    Deterministic: ties go to the lower client id, a donor gives up its highest sample
    indices, and receivers are served in client-id order. Needs num_clients * min_size <= N.
    """
    sizes = np.bincount(owner, minlength=num_clients)
    deficits = np.maximum(min_size - sizes, 0)
    heap = [(-int(size), int(client)) for client, size in enumerate(sizes) if size > min_size]
    heapq.heapify(heap)
    taken = np.zeros(num_clients, dtype=np.int64)
    for _ in range(int(deficits.sum())):
        negative_size, client = heapq.heappop(heap)
        taken[client] += 1
        if -negative_size - 1 > min_size:
            heapq.heappush(heap, (negative_size + 1, client))
    order = np.argsort(owner, kind="stable")
    ends = np.cumsum(sizes)
    donors = np.flatnonzero(taken)
    starts = np.repeat(ends[donors] - taken[donors], taken[donors])
    offsets = np.arange(len(starts)) - np.repeat(np.cumsum(taken[donors]) - taken[donors], taken[donors])
    moved = order[starts + offsets]
    repaired = owner.copy()
    repaired[moved] = np.repeat(np.arange(num_clients, dtype=np.int64), deficits)
    return repaired
