"""The paper-setting configs (experiments/paper/) run end to end on tiny files in the real on-disk formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fedref_ray.config import load_config
from fedref_ray.data.sources.cinic10 import CINIC10_CLASSES
from fedref_ray.errors import UserError
from fedref_ray.simulation import run_experiment

PAPER = Path(__file__).resolve().parent.parent / "experiments" / "paper"
# Small enough for one quick round on the local engine; the configs' own data, model and algorithm stay.
QUICK = ("engine.name=local", "run.rounds=2", "run.clients_per_round=2")


def _write_femnist(root: Path, writers: int = 4, per_writer: int = 6) -> None:
    """LEAF JSON: train/ and test/ files, one record of 784 floats in [0, 1] per sample, 62 classes."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        users = {
            f"f{w:04d}_00": {
                "x": (rng.integers(0, 256, (per_writer, 784)) / 255.0).tolist(),
                "y": rng.integers(0, 62, per_writer).tolist(),
            }
            for w in range(writers)
        }
        content = {"users": list(users), "num_samples": [per_writer] * writers, "user_data": users}
        (root / split).mkdir(parents=True)
        (root / split / f"all_data_0_niid_05_keep_0_{split}_9.json").write_text(json.dumps(content))


def _write_cinic(root: Path, per_class: int = 2) -> None:
    """The ImageFolder tree of 32x32 RGB PNGs, every class in train/ and test/."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in CINIC10_CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels, mode="RGB").save(folder / f"cifar10-{split}-{i}.png")


@pytest.mark.parametrize(
    ("config", "write", "extra"),
    [
        ("femnist.yaml", _write_femnist, ("model.hidden=16",)),
        # 20 tiny images over 100 clients would leave most of them empty.
        ("cinic10.yaml", _write_cinic, ("partition.num_clients=4",)),
    ],
)
def test_paper_config_runs_on_tiny_files(tmp_path: Path, config: str, write, extra: tuple[str, ...]) -> None:
    # Prepare
    data = tmp_path / "data"
    write(data)
    overrides = [f"data.root={data}", f"run.results_dir={tmp_path / 'run'}", *QUICK, *extra]
    cfg = load_config(PAPER / config, overrides)

    # Act
    result = run_experiment(cfg, quiet=True)

    # Assert
    assert result.summary["rounds"] == 2
    assert 0.0 <= result.summary["final_accuracy"] <= 1.0
    assert (result.results_dir / "rounds.parquet").is_file()


@pytest.mark.parametrize("config", ["femnist.yaml", "cinic10.yaml"])
def test_paper_config_without_data_root_says_to_set_it(config: str) -> None:
    with pytest.raises(UserError, match="data.root"):
        load_config(PAPER / config)
