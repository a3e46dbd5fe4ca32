"""IID partition: a uniform shuffle cut into near-equal parts."""

from __future__ import annotations

import numpy as np

from fedref_ray.data.partition._common import (
    require_int,
    require_num_clients,
    split_permutation,
)


def iid_partition(num_samples: int, num_clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle the sample indices and deal them out so client sizes differ by at most one.

    This is the homogeneous baseline against which the skewed partitions are compared.
    """
    num_samples = require_int("partition.num_samples", num_samples, 1, None, "an integer >= 1")
    num_clients = require_num_clients(num_clients, num_samples)
    base, extra = divmod(num_samples, num_clients)
    sizes = np.full(num_clients, base, dtype=np.int64)
    sizes[:extra] += 1
    return split_permutation(rng.permutation(num_samples), sizes)
