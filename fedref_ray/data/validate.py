"""Checks for arrays that come from the user (an .npz, Parquet files, or their own loader function).

Every problem is a one-line UserError naming where the arrays came from and which array is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.errors import UserError

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL = ("client_ids",)


def dataset_from_arrays(source: str, arrays: Mapping[str, Any]) -> DatasetArrays:
    """Validate train/test features and labels (and optional natural client ids) and return them as DatasetArrays.

    Features must be numeric, finite, at least 2-D with equal sample shapes; uint8 images are
    scaled to [0, 1] at training time, other features are cast to float32. Labels must be
    integers in [0, C) with C >= 2 taken from both splits.
    """
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise UserError(f"{source}: missing array '{missing[0]}' (needs {', '.join(REQUIRED)}; optional client_ids)")
    unknown = [k for k in arrays if k not in REQUIRED + OPTIONAL]
    if unknown:
        raise UserError(f"{source}: unknown array '{unknown[0]}' (allowed: {', '.join(REQUIRED + OPTIONAL)})")
    x_train, x_test = (_features(source, k, arrays[k]) for k in ("x_train", "x_test"))
    y_train, y_test = (_labels(source, k, arrays[k]) for k in ("y_train", "y_test"))
    if x_train.shape[1:] != x_test.shape[1:]:
        raise UserError(
            f"{source}: x_train samples have shape {x_train.shape[1:]} but x_test samples {x_test.shape[1:]}"
        )
    for x_name, x, y_name, y in (("x_train", x_train, "y_train", y_train), ("x_test", x_test, "y_test", y_test)):
        if len(x) != len(y):
            raise UserError(f"{source}: {x_name} has {len(x)} samples but {y_name} has {len(y)} labels")
        if len(x) == 0:
            raise UserError(f"{source}: {x_name} is empty")
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    if len(np.unique(np.concatenate([y_train, y_test]))) < 2:
        raise UserError(f"{source}: labels take a single value; classification needs at least 2 classes")
    client_ids = None
    if arrays.get("client_ids") is not None:
        client_ids = np.asarray(arrays["client_ids"])
        if client_ids.ndim != 1 or len(client_ids) != len(y_train):
            raise UserError(f"{source}: client_ids must be 1-D with one id per training sample ({len(y_train)})")
        if not np.issubdtype(client_ids.dtype, np.integer):
            raise UserError(f"{source}: client_ids must be integers, got dtype {client_ids.dtype}")
        client_ids = client_ids.astype(np.int64)
    return DatasetArrays(source, x_train, y_train, x_test, y_test, num_classes, client_ids)


def _features(source: str, name: str, value: Any) -> np.ndarray:
    x = np.asarray(value)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise UserError(f"{source}: {name} must be numeric, got dtype {x.dtype}")
    if x.ndim < 2:
        raise UserError(f"{source}: {name} must have a sample axis and feature axes, got shape {x.shape}")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise UserError(f"{source}: {name} holds NaN or Inf values")
    return x


def _labels(source: str, name: str, value: Any) -> np.ndarray:
    y = np.asarray(value)
    if y.ndim != 1:
        raise UserError(f"{source}: {name} must be 1-D (one integer label per sample), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all():
            y = y.astype(np.int64)
        else:
            raise UserError(f"{source}: {name} must hold integer class labels, got dtype {y.dtype}")
    if len(y) and y.min() < 0:
        raise UserError(f"{source}: {name} holds a negative label ({int(y.min())}); labels are 0 .. C-1")
    return y.astype(np.int64)
