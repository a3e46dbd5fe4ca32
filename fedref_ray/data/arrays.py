"""The in-memory form every data source returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DatasetArrays:
    """Train and test arrays of one dataset, plus natural client ids where they exist.

    Images are (N, C, H, W) uint8 (scaled to [0, 1] at training time); tabular
    data is (N, F) float32. Labels are int64 in [0, num_classes).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    train_client_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError(f"{self.name}: features and labels differ in length")
        if self.train_client_ids is not None and len(self.train_client_ids) != len(self.y_train):
            raise ValueError(f"{self.name}: train_client_ids and y_train differ in length")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. (1, 28, 28) or (60,)."""
        return tuple(self.x_train.shape[1:])
