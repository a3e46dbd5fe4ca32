"""Tests for FEMNIST read from tiny LEAF JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedref_ray.data.sources.femnist import load_femnist
from fedref_ray.errors import UserError


def _user(rng: np.random.Generator, labels: list[int]) -> tuple[np.ndarray, dict]:
    """A writer's record with pixels k/255 (exact after x*255), and the uint8 pixels it encodes."""
    pixels = rng.integers(0, 256, (len(labels), 784), dtype=np.uint8)
    return pixels, {"x": (pixels / 255.0).tolist(), "y": labels}


def _write_leaf(path: Path, users: dict[str, dict]) -> None:
    """Write one LEAF JSON file holding `users`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"users": list(users), "num_samples": [len(u["y"]) for u in users.values()], "user_data": users}
    path.write_text(json.dumps(content), encoding="utf-8")


def _write_femnist(root: Path) -> dict[str, np.ndarray]:
    """Two train files (writers f0002, f0001 then f0003) and one test file; returns each writer's train pixels."""
    rng = np.random.default_rng(0)
    pixels = {}
    pixels["f0002_41"], first = _user(rng, [61, 0, 35])
    pixels["f0001_07"], second = _user(rng, [10])
    pixels["f0003_12"], third = _user(rng, [5, 5])
    _, test_a = _user(rng, [61, 1])
    _write_leaf(root / "train" / "all_data_0_niid_05_keep_0_train_9.json", {"f0002_41": first, "f0001_07": second})
    _write_leaf(root / "train" / "all_data_1_niid_05_keep_0_train_9.json", {"f0003_12": third})
    _write_leaf(root / "test" / "all_data_0_niid_05_keep_0_test_9.json", {"f0002_41": test_a})
    return pixels


def test_femnist_round_trips_pixels_labels_and_writer_ids(tmp_path: Path) -> None:
    # Prepare
    pixels = _write_femnist(tmp_path)

    # Execute
    data = load_femnist(tmp_path)

    # Assert: writers numbered by first appearance across the sorted train files.
    assert data.x_train.shape == (6, 1, 28, 28) and data.x_test.shape == (2, 1, 28, 28)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert data.num_classes == 62
    np.testing.assert_array_equal(data.y_train, [61, 0, 35, 10, 5, 5])
    np.testing.assert_array_equal(data.y_test, [61, 1])
    np.testing.assert_array_equal(data.train_client_ids, [0, 0, 0, 1, 2, 2])
    expected = np.concatenate([pixels["f0002_41"], pixels["f0001_07"], pixels["f0003_12"]])
    np.testing.assert_array_equal(data.x_train.reshape(6, 784), expected)


def test_femnist_missing_root_raises_user_error_with_the_path(tmp_path: Path) -> None:
    # Execute / Assert
    with pytest.raises(UserError, match=r"data\.root.*LEAF JSON") as caught:
        load_femnist(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(caught.value)


def test_femnist_without_test_files_names_the_folder(tmp_path: Path) -> None:
    # Prepare
    _write_femnist(tmp_path)
    for path in (tmp_path / "test").glob("*.json"):
        path.unlink()

    # Execute / Assert
    with pytest.raises(UserError, match="no .json files") as caught:
        load_femnist(tmp_path)
    assert str(tmp_path / "test") in str(caught.value)


def _one_user(x: list, y: list) -> str:
    """A LEAF file's text with one writer 'a'."""
    return json.dumps({"users": ["a"], "num_samples": [len(y)], "user_data": {"a": {"x": x, "y": y}}})


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"users": ["a"], "user_data": {"a": ', "not valid JSON"),
        ('{"users": ["a"], "num_samples": [1]}', "user_data"),
        (_one_user([[0.5, 0.5]], [1]), r"\(n, 784\)"),
        (_one_user([[0.5] * 784], [62]), "labels outside 0..61"),
        (_one_user([[2.0] * 784], [3]), "outside 0..1"),
    ],
)
def test_femnist_malformed_file_raises_user_error_with_its_path(tmp_path: Path, content: str, problem: str) -> None:
    # Prepare
    _write_femnist(tmp_path)
    broken = tmp_path / "train" / "all_data_1_niid_05_keep_0_train_9.json"
    broken.write_text(content, encoding="utf-8")

    # Execute / Assert
    with pytest.raises(UserError, match=problem) as caught:
        load_femnist(tmp_path)
    assert str(broken) in str(caught.value)
