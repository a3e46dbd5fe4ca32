"""Checkpoints of the server's state, in formats that cannot carry code (.npz without pickle, JSON).

A checkpoint is a folder `checkpoints/round-NNNNNN/` with `state.npz` (every array)
and `meta.json` (scalars, the config fingerprint, the run id and SHA-256s covering both files; see
`fedref_ray.checkpoint_integrity`), written to a temporary folder, fsynced and renamed, so it is
either whole or absent.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedref_ray.checkpoint_integrity import list_checkpoints as list_checkpoints  # re-exported
from fedref_ray.checkpoint_integrity import prune, seal, verified_meta
from fedref_ray.client_state import ClientStateSnapshot, link_or_copy, segment_name, sha256_file
from fedref_ray.errors import UserError
from fedref_ray.params import Params
from fedref_ray.state_codec import decode_state, encode_state

FORMAT_VERSION = 3  # 2: meta.json is covered by the hash and names the run; 3: any algorithm's state, client state
CLIENT_STATE = "client_state"


@dataclass(frozen=True)
class ServerSnapshot:
    """Everything needed to continue a run exactly: round, global model, the algorithm's state, client state,
    forgetting tracker and costs."""

    round: int
    params: Params
    algorithm_state: Any
    client_state: ClientStateSnapshot | None
    best_class_accuracy: list[float] | None
    last_accuracy: float | None
    accuracy_drops: int
    bytes_down: int
    bytes_up: int
    samples: int


def _arrays(snapshot: ServerSnapshot) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every array of the snapshot by name, and the algorithm state's layout."""
    out = {f"params/{k}": v for k, v in snapshot.params.items()}
    state_arrays, layout = encode_state(snapshot.algorithm_state)
    out.update(state_arrays)
    if snapshot.best_class_accuracy is not None:
        out["tracker/best_class_accuracy"] = np.asarray(snapshot.best_class_accuracy, dtype=np.float64)
    if snapshot.client_state is not None:
        out[f"{CLIENT_STATE}/segment"] = snapshot.client_state.segment
        out[f"{CLIENT_STATE}/row"] = snapshot.client_state.row
    return out, layout


def _client_state_meta(snap: ClientStateSnapshot | None) -> dict[str, Any] | None:
    if snap is None:
        return None
    return {"names": list(snap.names), "size": snap.size, "files": {segment_name(r): h for r, h in snap.hashes.items()}}


def _group(arrays: dict[str, np.ndarray], prefix: str) -> Params:
    return {k.split("/", 1)[1]: v for k, v in arrays.items() if k.split("/", 1)[0] == prefix}


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def save_checkpoint(root: Path, snapshot: ServerSnapshot, config_fingerprint: str, keep: int) -> Path:
    """Write round `snapshot.round`'s checkpoint atomically and prune to the newest `keep`."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"round-{snapshot.round:06d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    try:
        arrays, layout = _arrays(snapshot)
        with open(tmp / "state.npz", "wb") as fh:
            np.savez(fh, **arrays)
        _fsync_file(tmp / "state.npz")
        if snapshot.client_state is not None:  # its files never change: hard links keep this round's state
            (tmp / CLIENT_STATE).mkdir()
            for round_, source in snapshot.client_state.files.items():
                link_or_copy(source, tmp / CLIENT_STATE / segment_name(round_))
        meta = {
            "format": FORMAT_VERSION,
            "round": snapshot.round,
            "algorithm_state": {"class": type(snapshot.algorithm_state).__qualname__, "fields": layout},
            "client_state": _client_state_meta(snapshot.client_state),
            "last_accuracy": snapshot.last_accuracy,
            "accuracy_drops": snapshot.accuracy_drops,
            "bytes_down": snapshot.bytes_down,
            "bytes_up": snapshot.bytes_up,
            "samples": snapshot.samples,
            "config_fingerprint": config_fingerprint,
        }
        meta = seal(meta, tmp, root.parent)  # root is <results folder>/checkpoints
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        _fsync_file(tmp / "meta.json")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune(root, keep, final)
    return final


def load_checkpoint(folder: Path, config_fingerprint: str, expected: Params, state_type: type) -> ServerSnapshot:
    """Read and verify a checkpoint: hashes, config, model shapes and the algorithm's state type must all match,
    else a UserError naming the file. `state_type` is the class of the configured algorithm's server state."""
    state_path = folder / "state.npz"
    meta = verified_meta(folder, config_fingerprint, FORMAT_VERSION)  # whole, this run's, this config's
    round_ = int(meta["round"])
    try:
        with np.load(state_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception:  # noqa: BLE001 - any parse failure is a corrupt file
        raise UserError(f"checkpoint file '{state_path}' cannot be read as .npz") from None
    params = _group(arrays, "params")
    if set(params) != set(expected) or any(params[k].shape != expected[k].shape for k in expected):
        raise UserError(
            f"checkpoint file '{state_path}' holds a different model than model.name/model.hidden configure"
        )
    saved = meta["algorithm_state"]
    if saved["class"] != state_type.__qualname__:
        raise UserError(f"checkpoint '{folder}' holds a {saved['class']}, not the configured algorithm's state")
    try:
        algorithm_state = decode_state(state_type, arrays, saved["fields"])
    except (KeyError, TypeError):
        raise UserError(f"checkpoint file '{state_path}' lacks arrays its meta.json names") from None
    best = arrays.get("tracker/best_class_accuracy")
    return ServerSnapshot(
        round=round_,
        params=params,
        algorithm_state=algorithm_state,
        client_state=_load_client_state(folder, meta.get("client_state"), arrays),
        best_class_accuracy=None if best is None else best.tolist(),
        last_accuracy=meta["last_accuracy"],
        accuracy_drops=int(meta["accuracy_drops"]),
        bytes_down=int(meta["bytes_down"]),
        bytes_up=int(meta["bytes_up"]),
        samples=int(meta["samples"]),
    )


def _load_client_state(folder: Path, meta: dict[str, Any] | None, arrays: dict[str, np.ndarray]):
    """The checkpoint's client-state index and files, each file checked against its SHA-256 in meta.json."""
    if meta is None:
        return None
    files, hashes = {}, {}
    for name, digest in meta["files"].items():
        path = folder / CLIENT_STATE / name
        if not path.is_file():
            raise UserError(f"checkpoint file '{path}' is missing")
        if sha256_file(path) != digest:
            raise UserError(
                f"checkpoint file '{path}' is truncated or corrupted (its SHA-256 does not match meta.json)"
            )
        round_ = int(name.removeprefix("round-").removesuffix(".f32"))
        files[round_], hashes[round_] = str(path), digest
    return ClientStateSnapshot(
        names=tuple(meta["names"]),
        size=int(meta["size"]),
        segment=arrays[f"{CLIENT_STATE}/segment"],
        row=arrays[f"{CLIENT_STATE}/row"],
        files=files,
        hashes=hashes,
    )
