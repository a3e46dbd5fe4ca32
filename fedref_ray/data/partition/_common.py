"""Validation and index bookkeeping shared by the partitioners."""

from __future__ import annotations

import numbers

import numpy as np

from fedref_ray.errors import UserError


def require_int(field: str, value: object, low: int, high: int | None, allowed: str) -> int:
    """Return `value` as an int, or raise UserError if it is not an integer in [low, high]."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and int(value) >= low and (high is None or int(value) <= high):
        return int(value)
    raise UserError(f"{field}={value!r}: must be {allowed}")


def require_positive(field: str, value: object) -> float:
    """Return `value` as a float, or raise UserError if it is not a finite number > 0."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and np.isfinite(float(value)) and float(value) > 0:
        return float(value)
    raise UserError(f"{field}={value!r}: must be a finite number > 0")


def require_num_clients(num_clients: object, num_samples: int) -> int:
    """Check that every client can get at least one of the `num_samples` samples."""
    return require_int(
        "partition.num_clients",
        num_clients,
        1,
        num_samples,
        f"an integer from 1 to {num_samples} (the number of training samples)",
    )


def as_1d(field: str, values: np.ndarray) -> np.ndarray:
    """Return `values` as a 1-D array, or raise UserError naming `field` if it is not 1-D."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise UserError(f"{field} has shape {array.shape}: must be a 1-D array, one entry per sample")
    return array


def split_by_owner(owner: np.ndarray, num_clients: int) -> list[np.ndarray]:
    """Turn an owner-per-sample array into one sorted int64 index array per client."""
    order = np.argsort(owner, kind="stable").astype(np.int64)
    sizes = np.bincount(owner, minlength=num_clients)
    return np.split(order, np.cumsum(sizes)[:-1])


def split_permutation(permutation: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
    """Cut a permutation of sample indices into consecutive chunks of `sizes`, each sorted."""
    chunks = np.split(permutation.astype(np.int64), np.cumsum(sizes)[:-1])
    return [np.sort(chunk) for chunk in chunks]
