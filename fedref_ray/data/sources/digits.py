"""scikit-learn's bundled 8x8 handwritten digits: a tiny real image set that needs no files."""

from __future__ import annotations

import numpy as np

from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.errors import UserError


def load_digits(seed: int, test_fraction: float = 0.2) -> DatasetArrays:
    """Load the 1,797 digits as (N, 1, 8, 8) uint8 (0..16 scaled to 0..255), split stratified by class.

    The split is seeded, so the same seed always gives the same train/test sets.
    """
    if not 0 < test_fraction < 1:
        raise UserError(f"data.test_fraction={test_fraction!r} is not allowed for source 'digits'; allowed: in (0, 1)")
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return DatasetArrays(
        name="digits",
        x_train=np.ascontiguousarray(x_train),
        y_train=np.ascontiguousarray(y_train),
        x_test=np.ascontiguousarray(x_test),
        y_test=np.ascontiguousarray(y_test),
        num_classes=10,
    )
