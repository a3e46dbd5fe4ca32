"""Pathological non-IID partition: label-sorted shards dealt out to clients."""

from __future__ import annotations

import numpy as np

from fedref_ray.data.partition._common import (
    as_1d,
    require_int,
    require_num_clients,
    split_by_owner,
)


def shards_partition(
    labels: np.ndarray,
    num_clients: int,
    classes_per_client: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Sort samples by label, cut them into num_clients * classes_per_client shards and deal
    classes_per_client random shards to each client (McMahan et al., 2017).

    Shard sizes differ by at most one, so each client sees at most classes_per_client labels
    when every class size is a multiple of the shard size.
    """
    labels = as_1d("partition labels", labels)
    num_samples = len(labels)
    num_clients = require_num_clients(num_clients, num_samples)
    classes_per_client = require_int(
        "partition.classes_per_client",
        classes_per_client,
        1,
        num_samples // num_clients,
        f"an integer from 1 to {num_samples // num_clients} so that each of the "
        f"num_clients * classes_per_client shards holds at least one of the {num_samples} samples",
    )
    num_shards = num_clients * classes_per_client
    shuffled = rng.permutation(num_samples)
    by_label = shuffled[np.argsort(labels[shuffled], kind="stable")]
    base, extra = divmod(num_samples, num_shards)
    shard_sizes = np.full(num_shards, base, dtype=np.int64)
    shard_sizes[:extra] += 1
    shard_of_sample = np.repeat(np.arange(num_shards, dtype=np.int64), shard_sizes)
    client_of_shard = np.empty(num_shards, dtype=np.int64)
    client_of_shard[rng.permutation(num_shards)] = np.arange(num_shards) // classes_per_client
    owner = np.empty(num_samples, dtype=np.int64)
    owner[by_label] = client_of_shard[shard_of_sample]
    return split_by_owner(owner, num_clients)
