"""The federated training set: one copy of the arrays plus each client's index list (CSR form).

A client is a slice of `indices`, so memory grows with the dataset, not with the
number of clients; the arrays go into Ray's object store once and are read zero-copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FederatedData:
    """Training arrays shared by all clients; client k owns indices[offsets[k]:offsets[k+1]]."""

    x: np.ndarray
    y: np.ndarray
    offsets: np.ndarray
    indices: np.ndarray

    @classmethod
    def from_partition(cls, x: np.ndarray, y: np.ndarray, parts: Sequence[np.ndarray]) -> FederatedData:
        sizes = np.array([len(p) for p in parts], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        indices = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        return cls(x=x, y=y, offsets=offsets, indices=indices)

    @property
    def num_clients(self) -> int:
        return len(self.offsets) - 1

    @property
    def sizes(self) -> np.ndarray:
        """n_k for every client."""
        return np.diff(self.offsets)

    def client_indices(self, client_id: int) -> np.ndarray:
        return self.indices[self.offsets[client_id] : self.offsets[client_id + 1]]
