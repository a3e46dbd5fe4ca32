"""`data.name=arrays`: the user's own arrays from an .npz file or a folder of Parquet files, no code needed.

An .npz holds x_train, y_train, x_test, y_test and optionally client_ids (read with
allow_pickle off, so it cannot carry code). A folder holds train.parquet and test.parquet:
a `label` column, an optional integer `client_id` column (train only), and numeric feature
columns, read in file order as a (N, F) table.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.data.validate import dataset_from_arrays
from fedref_ray.errors import UserError


def load_arrays(path: str | Path) -> DatasetArrays:
    """Read and validate the arrays at `path` (an .npz file or a folder with train.parquet and test.parquet)."""
    p = Path(path).expanduser()
    if p.is_dir():
        return dataset_from_arrays(f"data.path='{p}'", _parquet_arrays(p))
    if not zipfile.is_zipfile(p):
        hint = "; save the arrays with numpy.savez" if p.suffix == ".npy" else ""
        raise UserError(f"data.path='{p}' is not an .npz file (a zip of named arrays){hint}")
    try:
        with np.load(p, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise UserError(f"data.path='{p}': an array holds Python objects; only numeric arrays are read") from None
        raise UserError(f"data.path='{p}' is not a readable .npz file ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"data.path='{p}' is not a readable .npz file ({exc})") from None
    return dataset_from_arrays(f"data.path='{p}'", arrays)


def _parquet_arrays(folder: Path) -> dict[str, np.ndarray]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out: dict[str, np.ndarray] = {}
    train_features: list[str] = []
    for split in ("train", "test"):
        file = folder / f"{split}.parquet"
        if not file.is_file():
            raise UserError(f"data.path='{folder}': '{file.name}' is missing (needs train.parquet and test.parquet)")
        try:
            table = pq.read_table(file)
        except (OSError, pa.ArrowInvalid) as exc:
            raise UserError(f"data file '{file}' is not readable Parquet ({exc})") from None
        if "label" not in table.column_names:
            raise UserError(f"data file '{file}' has no 'label' column")
        features = [c for c in table.column_names if c not in ("label", "client_id")]
        if split == "test" and features != train_features:
            raise UserError(f"data file '{file}': its feature columns differ from train.parquet's (names and order)")
        train_features = features
        if not features:
            raise UserError(f"data file '{file}' has no feature columns besides label and client_id")
        for name in features:
            kind = table.schema.field(name).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
                raise UserError(f"data file '{file}': feature column '{name}' is {kind}, not numeric")
        columns = [table.column(c).to_numpy(zero_copy_only=False) for c in features]
        out[f"x_{split}"] = np.stack(columns, axis=1).astype(np.float32)
        out[f"y_{split}"] = table.column("label").to_numpy(zero_copy_only=False)
        if "client_id" in table.column_names:
            if split == "test":
                raise UserError(f"data file '{file}': client_id belongs in train.parquet only")
            out["client_ids"] = table.column("client_id").to_numpy(zero_copy_only=False)
    return out
