"""Every random choice takes a generator derived from (run seed, round, client id, purpose).

Results therefore do not depend on which worker trains which client, or in what order.
"""

from __future__ import annotations

import numpy as np

PURPOSES = {"init": 0, "sample": 1, "train": 2, "available": 3, "fault": 4, "noise": 5, "profile": 6, "partition": 7}


def derive_seed(seed: int, purpose: str, round_: int = 0, client: int = 0) -> int:
    """A 63-bit seed from the tuple; stable across processes and Python versions."""
    ss = np.random.SeedSequence([seed, PURPOSES[purpose], round_, client])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def rng_for(seed: int, purpose: str, round_: int = 0, client: int = 0) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, purpose, round_, client))


def sample_clients(seed: int, round_: int, num_clients: int, clients_per_round: int) -> np.ndarray:
    """The sorted ids of the clients sampled in `round_`, uniformly without replacement."""
    rng = rng_for(seed, "sample", round_)
    return np.sort(rng.choice(num_clients, size=clients_per_round, replace=False)).astype(np.int64)
