"""Tests for data.name=arrays: the user's own .npz file or Parquet folder, validated into DatasetArrays."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fedref_ray
from fedref_ray.config import load_config
from fedref_ray.data.prepare import load_dataset
from fedref_ray.errors import UserError


def load(path):
    """load_dataset through the config, exactly as a run does."""
    return load_dataset(load_config(None, ["data.name=arrays", f"data.path={path}"]).data)


def good_arrays() -> dict[str, np.ndarray]:
    """6 train / 3 test samples of 2 features, labels 0..2 (so num_classes = 3)."""
    return {
        "x_train": np.arange(12, dtype=np.float64).reshape(6, 2),
        "y_train": np.array([0, 1, 2, 0, 1, 2]),
        "x_test": np.arange(6, dtype=np.float64).reshape(3, 2) / 10,
        "y_test": np.array([2, 1, 0]),
    }


def write_npz(tmp_path, name: str = "data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def write_parquet(folder, train: dict, test: dict):
    folder.mkdir(exist_ok=True)
    pq.write_table(pa.table(train), folder / "train.parquet")
    pq.write_table(pa.table(test), folder / "test.parquet")
    return folder


def expect_error(path, pattern: str) -> str:
    """Load `path`, expect a one-line UserError matching `pattern` that names the file; return the message."""
    with pytest.raises(UserError, match=pattern) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


# ---------------------------------------------------------------- good files


def test_npz_float64_features_become_float32(tmp_path) -> None:
    """6x2 float64 features are float32 with equal values; labels are int64; num_classes = max(2, 2) + 1 = 3."""
    # Prepare
    path = write_npz(tmp_path, **good_arrays())

    # Execute
    data = load(path)

    # Assert
    assert data.x_train.shape == (6, 2) and data.x_test.shape == (3, 2)
    assert data.x_train.dtype == np.float32 and data.x_test.dtype == np.float32
    np.testing.assert_array_equal(data.x_train[5], np.array([10.0, 11.0], dtype=np.float32))
    assert data.y_train.dtype == np.int64 and data.y_test.tolist() == [2, 1, 0]
    assert data.num_classes == 3
    assert data.train_client_ids is None
    assert data.input_shape == (2,)


def test_npz_uint8_images_stay_uint8_and_client_ids_are_kept(tmp_path) -> None:
    """(N,1,8,8) uint8 images are not cast; client_ids [5,5,7,7] come back as int64."""
    # Prepare
    x_train = np.full((4, 1, 8, 8), 200, dtype=np.uint8)
    x_test = np.full((2, 1, 8, 8), 3, dtype=np.uint8)
    client_ids = np.array([5, 5, 7, 7], dtype=np.int32)
    path = write_npz(tmp_path, x_train=x_train, y_train=np.array([0, 1, 0, 1]), x_test=x_test,
                     y_test=np.array([1, 0]), client_ids=client_ids)  # fmt: skip

    # Execute
    data = load(path)

    # Assert
    assert data.x_train.dtype == np.uint8 and data.x_train.shape == (4, 1, 8, 8)
    assert int(data.x_train.max()) == 200 and int(data.x_test.max()) == 3
    assert data.input_shape == (1, 8, 8)
    assert data.num_classes == 2
    assert data.train_client_ids.dtype == np.int64 and data.train_client_ids.tolist() == [5, 5, 7, 7]


def test_float_labels_that_are_whole_numbers_are_accepted(tmp_path) -> None:
    """y = [0., 1., 3.] (float64) becomes int64 [0, 1, 3]; num_classes = 3 + 1 = 4."""
    # Prepare
    arrays = good_arrays()
    arrays["y_train"] = np.array([0.0, 1.0, 3.0, 0.0, 1.0, 3.0])
    path = write_npz(tmp_path, **arrays)

    # Execute
    data = load(path)

    # Assert
    assert data.y_train.dtype == np.int64 and data.y_train.tolist() == [0, 1, 3, 0, 1, 3]
    assert data.num_classes == 4


def test_parquet_folder_loads_features_in_column_order_with_client_ids(tmp_path) -> None:
    """train: a, b (int), label, client_id; test: a, b, label -> x (N, 2) float32, ids kept."""
    # Prepare
    folder = write_parquet(
        tmp_path / "pq",
        {"a": [1.5, 2.5, 3.5, 4.5], "b": pa.array([10, 20, 30, 40], pa.int32()), "label": [0, 1, 1, 0],
         "client_id": [3, 3, 8, 8]},
        {"a": [0.5, 0.25], "b": [7, 9], "label": [1, 0]},
    )  # fmt: skip

    # Execute
    data = load(folder)

    # Assert
    assert data.x_train.shape == (4, 2) and data.x_train.dtype == np.float32
    np.testing.assert_array_equal(data.x_train[:, 0], [1.5, 2.5, 3.5, 4.5])
    np.testing.assert_array_equal(data.x_train[:, 1], [10, 20, 30, 40])
    np.testing.assert_array_equal(data.x_test, np.array([[0.5, 7], [0.25, 9]], dtype=np.float32))
    assert data.y_train.tolist() == [0, 1, 1, 0] and data.y_test.dtype == np.int64
    assert data.num_classes == 2
    assert data.train_client_ids.tolist() == [3, 3, 8, 8]


# ---------------------------------------------------------------- npz errors


def with_change(**changes) -> dict[str, np.ndarray]:
    arrays = good_arrays()
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    return arrays


NAN_TRAIN = np.arange(12, dtype=np.float64).reshape(6, 2)
NAN_TRAIN[2, 1] = np.nan
INF_TEST = np.zeros((3, 2))
INF_TEST[0, 0] = np.inf


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"y_test": None}, r"missing array 'y_test'"),
        ({"x_valid": np.zeros((2, 2))}, r"unknown array 'x_valid'"),
        ({"x_train": NAN_TRAIN}, r"x_train holds NaN or Inf"),
        ({"x_test": INF_TEST}, r"x_test holds NaN or Inf"),
        ({"y_train": np.array([0, 1, -1, 0, 1, 2])}, r"y_train holds a negative label \(-1\)"),
        ({"y_test": np.array([0.0, 1.5, 2.0])}, r"y_test must hold integer class labels"),
        ({"x_train": np.arange(6.0), "y_train": np.array([0, 1, 2, 0, 1, 2])}, r"x_train must have a sample axis"),
        ({"x_test": np.zeros((3, 3))}, r"x_train samples have shape \(2,\) but x_test samples \(3,\)"),
        ({"y_train": np.array([0, 1, 2, 0, 1])}, r"x_train has 6 samples but y_train has 5 labels"),
        ({"x_test": np.zeros((0, 2)), "y_test": np.zeros(0, dtype=np.int64)}, r"x_test is empty"),
        ({"y_train": np.zeros(6, dtype=np.int64), "y_test": np.zeros(3, dtype=np.int64)}, r"single value"),
        ({"client_ids": np.array([0, 1, 2])}, r"client_ids must be 1-D with one id per training sample \(6\)"),
    ],
    ids=["missing-y_test", "unknown-array", "nan-x_train", "inf-x_test", "negative-label", "fractional-labels",
         "1d-x", "sample-shape-mismatch", "x-y-length", "empty-split", "single-class", "client-ids-length"],
)  # fmt: skip
def test_npz_errors_are_one_line_user_errors_naming_file_and_array(tmp_path, changes, pattern) -> None:
    """Each broken .npz is refused with the array named (values hand-picked, see ids)."""
    # Prepare
    path = write_npz(tmp_path, **with_change(**changes))

    # Execute / Assert
    expect_error(path, pattern)


def test_labels_of_one_single_nonzero_class_are_refused(tmp_path) -> None:
    """y_train and y_test all 1: one class present, which the error message says is refused."""
    # Prepare
    path = write_npz(tmp_path, **with_change(y_train=np.ones(6, dtype=np.int64), y_test=np.ones(3, dtype=np.int64)))

    # Execute / Assert
    expect_error(path, r"single value")


class _TouchOnUnpickle:
    """Unpickling this object calls open(marker, 'w'), which creates `marker`: proof of unpickling."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_an_object_array_is_refused_without_unpickling(tmp_path) -> None:
    """x_train saved as an object array (pickled in the .npz) is a UserError and its pickle never runs."""
    # Prepare
    marker = tmp_path / "unpickled.txt"
    arrays = good_arrays()
    arrays["x_train"] = np.array([_TouchOnUnpickle(marker)] * 6, dtype=object)
    path = write_npz(tmp_path, **arrays)
    assert not marker.exists()

    # Execute
    message = expect_error(path, r"holds Python objects")

    # Assert
    assert not marker.exists()
    assert "only numeric arrays" in message


def test_a_file_that_is_not_an_npz_is_a_user_error(tmp_path) -> None:
    """A text file given as data.path is refused with one line naming it."""
    # Prepare
    path = tmp_path / "data.csv"
    path.write_text("x,y\n1,0\n")

    # Execute / Assert
    expect_error(path, r"data\.path")


def test_a_text_file_is_reported_as_not_an_npz(tmp_path) -> None:
    """A CSV given as data.path is 'not a readable .npz file', not 'an array holds Python objects'."""
    # Prepare
    path = tmp_path / "data.csv"
    path.write_text("x,y\n1,0\n")

    # Execute / Assert
    expect_error(path, r"not an \.npz file")


def test_a_truncated_zip_is_a_user_error(tmp_path) -> None:
    """The first 40 bytes of a real .npz (a broken zip) are refused as not a readable .npz."""
    # Prepare
    good = write_npz(tmp_path, "good.npz", **good_arrays())
    path = tmp_path / "broken.npz"
    path.write_bytes(good.read_bytes()[:40])

    # Execute / Assert
    expect_error(path, r"not an \.npz file")


def test_a_single_npy_array_is_a_user_error(tmp_path) -> None:
    """An .npy file (one array, not an archive) is refused with the savez hint."""
    # Prepare
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((3, 2)))

    # Execute / Assert
    expect_error(path, r"not an \.npz file.*numpy\.savez")


# ---------------------------------------------------------------- Parquet errors


def test_a_parquet_folder_without_test_parquet_is_a_user_error(tmp_path) -> None:
    """Only train.parquet present: the message names test.parquet."""
    # Prepare
    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(pa.table({"a": [1.0, 2.0], "label": [0, 1]}), folder / "train.parquet")

    # Execute / Assert
    expect_error(folder, r"'test\.parquet' is missing")


def test_a_string_feature_column_is_a_user_error(tmp_path) -> None:
    """Column 'colour' of strings in train.parquet is named, with its type."""
    # Prepare
    folder = write_parquet(tmp_path / "pq", {"a": [1.0, 2.0], "colour": ["red", "blue"], "label": [0, 1]},
                           {"a": [1.0], "colour": ["red"], "label": [1]})  # fmt: skip

    # Execute / Assert
    message = expect_error(folder, r"feature column 'colour' is string, not numeric")
    assert "train.parquet" in message


def test_client_id_in_test_parquet_is_a_user_error(tmp_path) -> None:
    """client_id belongs in train.parquet only; the message names test.parquet."""
    # Prepare
    folder = write_parquet(tmp_path / "pq", {"a": [1.0, 2.0], "label": [0, 1], "client_id": [0, 1]},
                           {"a": [1.0], "label": [1], "client_id": [0]})  # fmt: skip

    # Execute / Assert
    message = expect_error(folder, r"client_id belongs in train\.parquet only")
    assert "test.parquet" in message


# ---------------------------------------------------------------- config fields


def test_data_name_arrays_without_a_path_names_data_path() -> None:
    """data.name=arrays with data.path null is refused at config time."""
    # Execute / Assert
    with pytest.raises(UserError, match=r"^data\.path=None is not allowed: data\.name=arrays reads it"):
        load_config(None, ["data.name=arrays"])


def test_a_data_path_that_does_not_exist_names_data_path(tmp_path) -> None:
    """A missing file is refused at config time, naming data.path and the value."""
    # Prepare
    missing = tmp_path / "nope.npz"

    # Execute / Assert
    with pytest.raises(UserError, match=r"^data\.path=.*nope\.npz.* an existing file or folder"):
        load_config(None, ["data.name=arrays", f"data.path={missing}"])


def test_a_data_path_with_another_data_name_names_data_path(tmp_path) -> None:
    """data.path is only read by data.name=arrays; with digits it is an error."""
    # Prepare
    path = write_npz(tmp_path, **good_arrays())

    # Execute / Assert
    with pytest.raises(UserError, match=r"^data\.path=.* null unless data\.name=arrays"):
        load_config(None, ["data.name=digits", f"data.path={path}"])


# ---------------------------------------------------------------- end to end


def blobs(tmp_path, with_ids: bool):
    """Two Gaussian blobs in 2-D at (-2,-2) and (+2,+2), 200 train / 50 test; natural ids 10/20/30/40 own
    20/40/60/80 consecutive training samples."""
    rng = np.random.default_rng(0)

    def draw(n):
        y = np.arange(n) % 2
        x = rng.normal(size=(n, 2)) + np.where(y[:, None] == 1, 2.0, -2.0)
        return x, y

    x_train, y_train = draw(200)
    x_test, y_test = draw(50)
    extra = {"client_ids": np.repeat([10, 20, 30, 40], [20, 40, 60, 80])} if with_ids else {}
    return write_npz(tmp_path, "blobs.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, **extra)


def run_blobs(tmp_path, path, *overrides: str):
    return fedref_ray.run(
        None,
        [
            "data.name=arrays",
            f"data.path={path}",
            "model.name=logreg",
            "engine.name=local",
            "partition.num_clients=4",
            "run.clients_per_round=2",
            "run.rounds=2",
            "training.batch_size=16",
            f"run.results_dir={tmp_path / 'run'}",
            *overrides,
        ],
    )


def test_a_local_run_on_an_npz_gives_two_rounds_and_an_accuracy(tmp_path) -> None:
    """2 rounds of FedAvg with logreg on the blobs: rounds has 2 rows, accuracy in [0, 1]."""
    # Prepare
    path = blobs(tmp_path, with_ids=False)

    # Execute
    result = run_blobs(tmp_path, path, "partition.name=iid")

    # Assert
    assert len(result.rounds) == 2
    accuracy = result.summary["final_accuracy"]
    assert isinstance(accuracy, float) and 0.0 <= accuracy <= 1.0
    assert result.rounds["test_accuracy"].between(0, 1).all()


def test_natural_partition_uses_the_npz_client_ids(tmp_path) -> None:
    """4 natural ids with partition.num_clients=null: clients 0..3 are ids 10..40 with 20/40/60/80 samples."""
    # Prepare
    path = blobs(tmp_path, with_ids=True)
    size_of_client = {0: 20, 1: 40, 2: 60, 3: 80}  # natural clients in sorted id order

    # Execute
    result = run_blobs(tmp_path, path, "partition.name=natural", "partition.num_clients=null")

    # Assert
    clients = result.clients
    assert len(result.rounds) == 2 and len(clients) == 2 * 2  # 2 rounds x 2 sampled clients
    assert set(clients["client_id"].tolist()) <= {0, 1, 2, 3}
    for cid, samples in zip(clients["client_id"], clients["samples"]):
        assert samples == size_of_client[int(cid)]
