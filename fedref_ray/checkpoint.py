"""Checkpoints of the server's state, in formats that cannot carry code (.npz without pickle, JSON).

A checkpoint is a folder `checkpoints/round-NNNNNN/` with `state.npz` (every array)
and `meta.json` (scalars, the config fingerprint and the SHA-256 of state.npz),
written to a temporary folder, fsynced and renamed, so it is either whole or absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedref_ray.algorithms import ServerState
from fedref_ray.errors import UserError
from fedref_ray.params import Params

FORMAT_VERSION = 1
_OPTIONAL_PARAMS = ("reference", "prev_reference", "opt_m", "opt_v")


@dataclass(frozen=True)
class ServerSnapshot:
    """Everything needed to continue a run exactly: algorithm state, forgetting tracker and costs."""

    state: ServerState
    best_class_accuracy: list[float] | None
    last_accuracy: float | None
    accuracy_drops: int
    bytes_down: int
    bytes_up: int
    samples: int


def _arrays(snapshot: ServerSnapshot) -> dict[str, np.ndarray]:
    s = snapshot.state
    out = {f"params/{k}": v for k, v in s.params.items()}
    for i, model in enumerate(s.history):
        out.update({f"history{i}/{k}": v for k, v in model.items()})
    for name in _OPTIONAL_PARAMS:
        value = getattr(s, name)
        if value is not None:
            out.update({f"{name}/{k}": v for k, v in value.items()})
    if snapshot.best_class_accuracy is not None:
        out["tracker/best_class_accuracy"] = np.asarray(snapshot.best_class_accuracy, dtype=np.float64)
    return out


def _group(arrays: dict[str, np.ndarray], prefix: str) -> Params | None:
    found = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.split("/", 1)[0] == prefix}
    return found or None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def save_checkpoint(root: Path, snapshot: ServerSnapshot, config_fingerprint: str, keep: int) -> Path:
    """Write round `snapshot.state.round`'s checkpoint atomically and prune to the newest `keep`."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"round-{snapshot.state.round:06d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    try:
        with open(tmp / "state.npz", "wb") as fh:
            np.savez(fh, **_arrays(snapshot))
        _fsync_file(tmp / "state.npz")
        s = snapshot.state
        meta = {
            "format": FORMAT_VERSION,
            "round": s.round,
            "last_loss": s.last_loss,
            "history_length": len(s.history),
            "last_accuracy": snapshot.last_accuracy,
            "accuracy_drops": snapshot.accuracy_drops,
            "bytes_down": snapshot.bytes_down,
            "bytes_up": snapshot.bytes_up,
            "samples": snapshot.samples,
            "config_fingerprint": config_fingerprint,
            "state_sha256": _sha256(tmp / "state.npz"),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        _fsync_file(tmp / "meta.json")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Checkpoint folders, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("round-"))


def load_checkpoint(folder: Path, config_fingerprint: str, expected: Params) -> ServerSnapshot:
    """Read and verify a checkpoint: hash, config and model shapes must all match, else a UserError naming the file."""
    meta_path, state_path = folder / "meta.json", folder / "state.npz"
    for path in (meta_path, state_path):
        if not path.is_file():
            raise UserError(f"checkpoint file '{path}' is missing")
    try:
        meta = json.loads(meta_path.read_text())
        round_ = int(meta["round"])
    except (ValueError, KeyError, TypeError):
        raise UserError(f"checkpoint file '{meta_path}' is corrupted (not the JSON a checkpoint writes)") from None
    if meta.get("format") != FORMAT_VERSION:
        raise UserError(
            f"checkpoint file '{meta_path}' has format {meta.get('format')!r}; this version reads {FORMAT_VERSION}"
        )
    if meta.get("config_fingerprint") != config_fingerprint:
        raise UserError(
            f"checkpoint '{folder}' was written for a different config than this results folder's config.yaml"
        )
    if _sha256(state_path) != meta.get("state_sha256"):
        raise UserError(
            f"checkpoint file '{state_path}' is truncated or corrupted (its SHA-256 does not match meta.json)"
        )
    try:
        with np.load(state_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception:  # noqa: BLE001 - any parse failure is a corrupt file
        raise UserError(f"checkpoint file '{state_path}' cannot be read as .npz") from None
    params = _group(arrays, "params") or {}
    if set(params) != set(expected) or any(params[k].shape != expected[k].shape for k in expected):
        raise UserError(
            f"checkpoint file '{state_path}' holds a different model than model.name/model.hidden configure"
        )
    history = tuple(_group(arrays, f"history{i}") or {} for i in range(int(meta["history_length"])))
    state = ServerState(
        round=round_,
        params=params,
        last_loss=meta["last_loss"],
        history=history,
        **{name: _group(arrays, name) for name in _OPTIONAL_PARAMS},
    )
    best = arrays.get("tracker/best_class_accuracy")
    return ServerSnapshot(
        state=state,
        best_class_accuracy=None if best is None else best.tolist(),
        last_accuracy=meta["last_accuracy"],
        accuracy_drops=int(meta["accuracy_drops"]),
        bytes_down=int(meta["bytes_down"]),
        bytes_up=int(meta["bytes_up"]),
        samples=int(meta["samples"]),
    )
