"""No code runs from a data folder: a crafted CIFAR-10 batch, or a PNG that is not one, is refused unread.

Each planted file would create a marker file if the loader let it run; the tests assert the marker never appears.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fedref_ray.cli import main
from fedref_ray.data.sources.torchvision_sets import CIFAR10_TEST, CIFAR10_TRAIN, load_cifar10
from fedref_ray.errors import UserError

REPO = Path(__file__).resolve().parents[2]


class _Shell:
    """Unpickles as os.system(command)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Exec:
    """Unpickles as builtins.exec(code)."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def _batch(rng: np.random.Generator, size: int = 2) -> dict:
    return {"labels": rng.integers(0, 10, size).tolist(), "data": rng.integers(0, 256, (size, 3072), dtype=np.uint8)}


def _cifar_folder(root: Path, first_batch: bytes, protocol: int = 2) -> Path:
    """A CIFAR-10 folder of valid batches (numpy arrays, pickled as numpy does) but `first_batch` as data_batch_1."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in CIFAR10_TRAIN + CIFAR10_TEST:
        (folder / name).write_bytes(pickle.dumps(_batch(rng), protocol=protocol))
    (folder / "data_batch_1").write_bytes(first_batch)
    return folder


def _payloads(marker: Path) -> dict[str, bytes]:
    """Batches that create `marker` when unpickled freely: the call at the top, or hidden inside the dict."""
    shell, code = _Shell(f"touch {marker}"), _Exec(f"open({str(marker)!r}, 'w').close()")
    rng = np.random.default_rng(1)
    return {
        "os.system at the top": pickle.dumps(shell, protocol=2),
        "exec at the top": pickle.dumps(code, protocol=4),
        "os.system inside the batch": pickle.dumps({**_batch(rng), "filenames": [shell]}, protocol=2),
        "exec as the labels": pickle.dumps({"data": _batch(rng)["data"], "labels": code}, protocol=5),
    }


@pytest.mark.parametrize("kind", ["os.system at the top", "exec at the top", "os.system inside the batch",
                                  "exec as the labels"])  # fmt: skip
def test_a_malicious_cifar10_batch_runs_nothing_and_is_named(tmp_path, kind):
    # Prepare
    marker = tmp_path / "pwned"
    folder = _cifar_folder(tmp_path / "data", _payloads(marker)[kind])
    # Execute
    with pytest.raises(UserError) as caught:
        load_cifar10(tmp_path / "data")
    # Assert: refused, naming the file and what it asked for; the payload never ran
    message = str(caught.value)
    assert not marker.exists()
    assert str(folder / "data_batch_1") in message and "malformed" in message and "\n" not in message
    assert ("posix.system" in message or "os.system" in message) or "builtins.exec" in message


def test_the_cli_refuses_a_malicious_batch_with_one_line_and_runs_nothing(tmp_path):
    # Prepare: the whole CLI, in its own process (what a user runs)
    marker = tmp_path / "pwned"
    _cifar_folder(tmp_path / "data", _payloads(marker)["os.system at the top"])
    argv = ["run", "data.name=cifar10", f"data.root={tmp_path / 'data'}", "engine.name=local", "--quiet",
            "run.rounds=1", f"run.results_dir={tmp_path / 'out'}"]  # fmt: skip
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    # Execute
    done = subprocess.run([sys.executable, "-m", "fedref_ray.cli", *argv], cwd=REPO, env=env, capture_output=True)
    # Assert
    err = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2 and len(err) == 1 and "data_batch_1" in err[0]
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_genuine_batches_still_load_at_every_protocol(tmp_path, protocol):
    # Prepare: numpy pickles arrays differently by protocol (_reconstruct, _frombuffer), bytes as _codecs.encode
    rng = np.random.default_rng(7)
    batch = {**_batch(rng, 3), "batch_label": b"training batch 1 of 5", "filenames": [b"a.png", "b.png", "c.png"]}
    batch["labels"] = [np.int64(v) for v in batch["labels"]]  # numpy scalars: multiarray.scalar
    _cifar_folder(tmp_path, pickle.dumps(batch, protocol=protocol), protocol=protocol)
    # Execute
    data = load_cifar10(tmp_path)
    # Assert
    np.testing.assert_array_equal(data.x_train[:3].reshape(3, -1), batch["data"])
    np.testing.assert_array_equal(data.y_train[:3], batch["labels"])


def test_the_in_process_cli_refuses_a_batch_calling_exec(capsys, tmp_path):
    # Prepare: an in-process CLI run (main catches the UserError)
    marker = tmp_path / "pwned"
    _cifar_folder(tmp_path / "data", _payloads(marker)["exec at the top"])
    # Execute
    code = main(["run", "--quiet", "data.name=cifar10", f"data.root={tmp_path / 'data'}", "engine.name=local",
                 f"run.results_dir={tmp_path / 'out'}"])  # fmt: skip
    # Assert
    assert code == 2 and "builtins.exec" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize(("fmt", "size"), [("BMP", (32, 32)), ("GIF", (32, 32)), ("PNG", (4000, 4000))])
def test_a_cinic10_image_that_is_not_a_32x32_png_is_refused_before_decoding(tmp_path, fmt, size):
    # Prepare: a CINIC-10 layout whose first image is another format under a .png name, or far too large
    from PIL import Image

    from fedref_ray.data.sources.cinic10 import CINIC10_CLASSES, load_cinic10

    for split in ("train", "test"):
        for name in CINIC10_CLASSES:
            (tmp_path / split / name).mkdir(parents=True)
            Image.new("RGB", (32, 32)).save(tmp_path / split / name / "a.png")
    odd = tmp_path / "train" / "airplane" / "a.png"
    Image.new("RGB", size).save(odd, format=fmt)
    # Execute
    with pytest.raises(UserError) as caught:
        load_cinic10(tmp_path)
    # Assert
    message = str(caught.value)
    assert str(odd) in message and "\n" not in message
    assert ("want a PNG" in message) if fmt != "PNG" else ("4000x4000 pixels, want 32x32" in message)
