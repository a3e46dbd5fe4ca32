"""Per-client algorithm state (SCAFFOLD's c_k, FedDyn's g_k, ...) kept on disk, not on the heap.

Each round's new states go into one append-only file `round-NNNNNN.f32` (one row per client
that reported, its state tensors back to back); an in-memory index says which file and row
hold each client's latest state. Only clients that have taken part have a row. Files are never
changed once written, so a checkpoint keeps a round's state by hard-linking the files its index
needs, and the live folder drops a file as soon as no client's latest state is in it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ClientStateSnapshot:
    """The index at one round and the files it needs (by round), with their SHA-256."""

    names: tuple[str, ...]
    size: int
    segment: np.ndarray
    row: np.ndarray
    files: dict[int, str]
    hashes: dict[int, str]


def segment_name(round_: int) -> str:
    return f"round-{round_:06d}.f32"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def link_or_copy(source: str | Path, target: Path) -> None:
    """Hard-link `source` to `target` (free, and safe since files never change); copy across file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class ClientStateStore:
    """State tensors `names` (each a flat float32 vector of `size`) for up to `num_clients` clients, under `folder`."""

    def __init__(self, folder: Path, names: tuple[str, ...], size: int, num_clients: int) -> None:
        self.folder, self.names, self.size = Path(folder), tuple(names), int(size)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.segment = np.full(num_clients, -1, dtype=np.int32)
        self.row = np.full(num_clients, -1, dtype=np.int32)
        self.hashes: dict[int, str] = {}

    @property
    def row_floats(self) -> int:
        return len(self.names) * self.size

    def path(self, round_: int) -> Path:
        return self.folder / segment_name(round_)

    def get(self, client_ids: Iterable[int]) -> dict[int, dict[str, np.ndarray]]:
        """The latest state of each given client that has one (clients that never reported have none)."""
        out = {}
        for cid in client_ids:
            seg = int(self.segment[cid])
            if seg < 0:
                continue
            offset = int(self.row[cid]) * self.row_floats * 4
            flat = np.fromfile(self.path(seg), dtype=np.float32, count=self.row_floats, offset=offset)
            out[int(cid)] = {n: flat[i * self.size : (i + 1) * self.size] for i, n in enumerate(self.names)}
        return out

    def put(self, round_: int, states: Mapping[int, Mapping[str, np.ndarray]]) -> None:
        """Write round `round_`'s new states (one file) and point the index at them."""
        if not states:
            return
        ids = sorted(states)
        rows = [np.ascontiguousarray(states[c][n], dtype=np.float32).reshape(-1) for c in ids for n in self.names]
        bad = next((v.size for v in rows if v.size != self.size), None)
        if bad is not None:
            raise ValueError(f"a client state tensor has {bad} values, not the model's {self.size}")
        tmp = self.path(round_).with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            for vector in rows:
                fh.write(vector.tobytes())
        os.replace(tmp, self.path(round_))
        self.hashes.pop(round_, None)
        ids_array = np.asarray(ids, dtype=np.int64)
        self.segment[ids_array] = round_
        self.row[ids_array] = np.arange(len(ids), dtype=np.int32)
        self._drop_unused()

    def _live_rounds(self) -> set[int]:
        return {int(r) for r in np.unique(self.segment) if r >= 0}

    def _drop_unused(self) -> None:
        live = {segment_name(r) for r in self._live_rounds()}
        for file in self.folder.iterdir():
            if file.name not in live:
                file.unlink()
        self.hashes = {r: h for r, h in self.hashes.items() if segment_name(r) in live}

    def snapshot(self) -> ClientStateSnapshot:
        """The index now and the files it needs (hashes computed once per file)."""
        rounds = sorted(self._live_rounds())
        for r in rounds:
            if r not in self.hashes:
                self.hashes[r] = sha256_file(self.path(r))
        return ClientStateSnapshot(
            names=self.names,
            size=self.size,
            segment=self.segment.copy(),
            row=self.row.copy(),
            files={r: str(self.path(r)) for r in rounds},
            hashes={r: self.hashes[r] for r in rounds},
        )

    def restore(self, snap: ClientStateSnapshot) -> None:
        """Continue from a checkpoint's index: the live folder ends up holding exactly the files it names."""
        if snap.names != self.names or snap.size != self.size or len(snap.segment) != len(self.segment):
            raise ValueError("the checkpoint's client state does not fit this run's algorithm, model or clients")
        for round_, source in snap.files.items():
            target = self.path(round_)
            if Path(source).resolve() != target.resolve():
                tmp = target.with_suffix(".tmp")
                tmp.unlink(missing_ok=True)
                link_or_copy(source, tmp)
                os.replace(tmp, target)
        self.segment, self.row = snap.segment.copy(), snap.row.copy()
        self.hashes = dict(snap.hashes)
        self._drop_unused()
