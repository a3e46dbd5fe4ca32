"""A checkpoint's seal and its verification: what makes a checkpoint folder trustworthy, apart from its arrays.

meta.json carries `state_sha256` (state.npz alone, to name the damaged file) and `sha256`, a hash over
state.npz's bytes and the canonical JSON of the rest of meta.json, so an edited round number, loss or
fingerprint is refused like a damaged array. It also carries the results folder's run id
(`fedref_ray.run_identity`), so a checkpoint of another run is refused. The newest checkpoint is the one
claiming the highest round, in meta.json or its folder name, so a renamed folder or an edited round cannot
hide a bad checkpoint behind an older good one; verification then requires both to agree. Pruning
orders this run's checkpoints by the round recorded in meta.json.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from fedref_ray.errors import UserError
from fedref_ray.run_identity import RUN_FILE, read_run_id

META, STATE = "meta.json", "state.npz"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _whole_sha256(state_path: Path, meta: dict[str, Any]) -> str:
    """SHA-256 of state.npz's bytes, a NUL, then meta without its `sha256` as sorted, compact JSON."""
    digest = hashlib.sha256()
    with open(state_path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    rest = {k: v for k, v in meta.items() if k != "sha256"}
    digest.update(b"\0" + json.dumps(rest, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


def seal(meta: dict[str, Any], folder: Path, results_dir: Path) -> dict[str, Any]:
    """`meta` plus the run id of `results_dir` and the hashes over `folder`'s state.npz and meta itself."""
    sealed = {**meta, "run_id": read_run_id(results_dir), "state_sha256": file_sha256(folder / STATE)}
    sealed["sha256"] = _whole_sha256(folder / STATE, sealed)
    return sealed


def _verify(folder: Path, config_fingerprint: str, format_version: int) -> dict[str, Any]:
    meta_path, state_path = folder / META, folder / STATE
    for path in (meta_path, state_path):
        if not path.is_file():
            raise UserError(f"checkpoint file '{path}' is missing")
    try:
        meta = json.loads(meta_path.read_text())
        int(meta["round"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"checkpoint file '{meta_path}' is corrupted (not the JSON a checkpoint writes)") from None
    if meta.get("format") != format_version:
        raise UserError(
            f"checkpoint file '{meta_path}' has format {meta.get('format')!r}; this version reads {format_version}"
        )
    if file_sha256(state_path) != meta.get("state_sha256"):
        raise UserError(
            f"checkpoint file '{state_path}' is truncated or corrupted (its SHA-256 does not match meta.json)"
        )
    if _whole_sha256(state_path, meta) != meta.get("sha256"):
        raise UserError(
            f"checkpoint file '{meta_path}' was edited or is corrupted (its content does not match its SHA-256)"
        )
    if folder.name != f"round-{int(meta['round']):06d}":
        raise UserError(
            f"checkpoint '{folder}' records round {meta['round']} in meta.json: its folder was renamed or copied"
        )
    own = read_run_id(folder.parent.parent)
    if meta.get("run_id") != own:
        raise UserError(
            f"checkpoint '{folder}' belongs to another run (run id {meta.get('run_id')}), not to this folder's "
            f"run ({own}, in {RUN_FILE}); it cannot be resumed here"
        )
    if meta.get("config_fingerprint") != config_fingerprint:
        raise UserError(
            f"checkpoint '{folder}' was written for a different config than this results folder's config.yaml"
        )
    return meta


def verified_meta(folder: Path, config_fingerprint: str, format_version: int) -> dict[str, Any]:
    """meta.json of a whole, untouched checkpoint of this folder's run and config, else a one-line UserError.

    The error names the damaged file and, when an older checkpoint passes, which one and how to resume from it.
    """
    try:
        return _verify(folder, config_fingerprint, format_version)
    except UserError as exc:
        older = newest_valid(folder.parent, config_fingerprint, format_version, before=folder)
        if older is None:
            raise
        raise UserError(
            f"{exc}; the older checkpoint '{older.name}' is valid: delete '{folder}' and resume again "
            f"to continue from its round {recorded_round(older)}"
        ) from None


def newest_valid(root: Path, config_fingerprint: str, format_version: int, before: Path) -> Path | None:
    """The newest checkpoint under `root` older than `before` that passes verification, if any."""
    older = [p for p in list_checkpoints(root) if p != before and _claimed_round(p) < _claimed_round(before)]
    for candidate in reversed(older):
        try:
            _verify(candidate, config_fingerprint, format_version)
        except UserError:
            continue
        return candidate
    return None


def recorded_round(folder: Path) -> int:
    """The round in a checkpoint's meta.json (-1 if unreadable)."""
    try:
        return int(json.loads((folder / META).read_text())["round"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def _claimed_round(folder: Path) -> int:
    """The highest round a checkpoint folder claims, in meta.json or in its name (round-NNNNNN)."""
    try:
        named = int(folder.name.rsplit("-", 1)[-1])
    except ValueError:
        named = -1
    return max(recorded_round(folder), named)


def _recorded_run(folder: Path) -> Any:
    try:
        return json.loads((folder / META).read_text()).get("run_id", None)
    except (OSError, ValueError, AttributeError):
        return ...  # unreadable: matches no run


def list_checkpoints(root: Path) -> list[Path]:
    """Checkpoint folders (`round-*`), oldest first by the highest round each claims (meta.json or name)."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("round-")]
    return sorted(found, key=lambda p: (_claimed_round(p), p.name))


def prune(root: Path, keep: int, written: Path) -> None:
    """Remove this run's checkpoints but the newest `keep` (by recorded round), never `written`.

    Checkpoints of another run, or unreadable ones, are not this run's to remove; resume refuses them.
    """
    run_id = read_run_id(root.parent)
    own = sorted((p for p in list_checkpoints(root) if _recorded_run(p) == run_id), key=recorded_round)
    for old in own[:-keep]:
        if old != written:
            shutil.rmtree(old, ignore_errors=True)
