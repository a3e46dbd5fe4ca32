"""Natural partition: the dataset's own writer or device ids become the clients."""

from __future__ import annotations

import numpy as np

from fedref_ray.data.partition._common import as_1d, require_int, split_by_owner
from fedref_ray.errors import UserError


def natural_partition(client_ids: np.ndarray, num_clients: int | None, rng: np.random.Generator) -> list[np.ndarray]:
    """Group samples by their natural client id, keeping every natural client whole.

    With num_clients None every natural client is used (in sorted id order). With fewer,
    num_clients natural clients are chosen at random and each unchosen one is merged
    whole into a randomly chosen one, so no sample is dropped.
    """
    client_ids = as_1d("partition client_ids", client_ids)
    if len(client_ids) == 0:
        raise UserError("partition client_ids is empty: the dataset needs natural client ids")
    _, natural_of_sample = np.unique(client_ids, return_inverse=True)
    num_natural = int(natural_of_sample.max()) + 1
    if num_clients is None:
        return split_by_owner(natural_of_sample, num_natural)
    num_clients = require_int(
        "partition.num_clients",
        num_clients,
        1,
        num_natural,
        f"null or an integer from 1 to {num_natural} (the number of natural clients)",
    )
    chosen = rng.permutation(num_natural)[:num_clients]
    client_of_natural = rng.integers(0, num_clients, size=num_natural)
    client_of_natural[chosen] = np.arange(num_clients)
    return split_by_owner(client_of_natural[natural_of_sample], num_clients)
