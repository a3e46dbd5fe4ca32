"""The results folder: resolved config, rounds.parquet, clients.parquet, summary.json, final model.

Files are written atomically (temporary file, fsync, rename), so an interrupted
run never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fedref_ray.aggregation import ClientRecord
from fedref_ray.config import ExperimentConfig, config_to_yaml
from fedref_ray.errors import UserError
from fedref_ray.locking import LOCK_NAME
from fedref_ray.metrics import RoundRecord, to_target
from fedref_ray.params import Params
from fedref_ray.run_identity import RUN_FILE, new_run_id, write_run_id

RESULT_FILES = ("config.yaml", "rounds.parquet", "clients.parquet", "summary.json", "model.npz")
# Every name a run writes at the top of its folder; --overwrite removes only folders holding nothing else.
# (client_state/: per-client state of stateful algorithms, `fedref_ray.engine.base`.) Add any new one here.
RUN_ENTRIES = frozenset({*RESULT_FILES, RUN_FILE, "checkpoints", "client_state", LOCK_NAME})
# Removed first, so that an --overwrite cut short leaves a folder that is plainly not a resumable run.
_IDENTITY_FIRST = (RUN_FILE, "config.yaml", "summary.json")


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)`, fsync it, and rename it over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _written_by_a_run(name: str) -> bool:
    return name in RUN_ENTRIES or (name.startswith(".") and name.endswith(".tmp"))  # atomic_write's leftovers


def prepare_results_dir(path: str | Path, overwrite: bool) -> Path:
    """Check the (locked) folder is empty; with `overwrite`, empty a previous run's folder first.

    Only a folder holding nothing but what a run writes is emptied: a mistyped results_dir that names
    a folder of other files is refused, never cleared.
    """
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"run.results_dir='{out}' exists and is not a directory")
    entries = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME) if out.is_dir() else []
    if entries and not overwrite:
        raise UserError(
            f"run.results_dir='{out}' is not empty: pass --overwrite to replace it or choose another folder"
        )
    foreign = [name for name in entries if not _written_by_a_run(name)]
    if foreign:
        raise UserError(
            f"--overwrite: run.results_dir='{out}' holds '{foreign[0]}', which no run writes; --overwrite only "
            "replaces a previous run's folder: move it away or choose another folder"
        )
    for name in sorted(entries, key=lambda n: (n not in _IDENTITY_FIRST, n)):
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


class ResultsWriter:
    """Accumulates round and client rows and rewrites the Parquet files after each round.

    On resume it starts from the rows of rounds up to the checkpoint's, so the files
    grow exactly as in an uninterrupted run.
    """

    def __init__(self, out: Path, cfg: ExperimentConfig, resume_round: int | None = None) -> None:
        self.out, self.cfg = out, cfg
        self.rounds: list[dict] = []
        self.clients: list[dict] = []
        if resume_round is None:
            write_run_id(out, new_run_id())  # before any checkpoint: each copies it
            atomic_write(out / "config.yaml", lambda tmp: Path(tmp).write_text(config_to_yaml(cfg)))
        else:
            self.rounds = read_rows(out / "rounds.parquet", resume_round)
            self.clients = read_rows(out / "clients.parquet", resume_round)

    def add(self, record: RoundRecord, clients: list[ClientRecord]) -> None:
        """Record a round; rounds.parquet is rewritten now, the larger clients.parquet at `flush`."""
        self.rounds.append(record.to_row())
        self.clients.extend(vars(c) for c in clients)
        self._write_table("rounds.parquet", self.rounds)

    def flush(self) -> None:
        """Write clients.parquet too (at checkpoints, interruptions and the end)."""
        self._write_table("rounds.parquet", self.rounds)
        self._write_table("clients.parquet", self.clients)

    def _write_table(self, name: str, rows: list[dict]) -> None:
        if rows:
            table = pa.Table.from_pylist(rows)
            atomic_write(self.out / name, lambda tmp: pq.write_table(table, tmp))

    def finish(self, params: Params, wall_seconds: float, warnings: list[str] | tuple[str, ...] = ()) -> dict:
        """Write clients.parquet, summary.json and the final global model (model.npz); return the summary."""
        self.flush()
        accs = [r["test_accuracy"] for r in self.rounds]
        summary = {
            "algorithm": self.cfg.algorithm.name,
            "seed": self.cfg.run.seed,
            "rounds": len(self.rounds),
            "final_accuracy": accs[-1] if accs else None,
            "best_accuracy": max(accs) if accs else None,
            "target_accuracy": self.cfg.run.target_accuracy,
            **to_target(self.rounds, self.cfg.run.target_accuracy),
            "final_forgetting": self.rounds[-1]["forgetting"] if self.rounds else None,
            "wall_seconds": wall_seconds,
            "warnings": list(warnings),
        }
        atomic_write(self.out / "summary.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2) + "\n"))
        atomic_write(self.out / "model.npz", lambda tmp: _save_npz(tmp, params))
        return summary


def read_rows(path: Path, up_to_round: int) -> list[dict]:
    """Rows of a results table for rounds <= `up_to_round` (the part a checkpoint covers)."""
    if up_to_round == 0:
        return []
    try:
        rows = pq.read_table(path).to_pylist()
    except (OSError, pa.ArrowInvalid):
        raise UserError(f"results file '{path}' is missing or unreadable; cannot resume") from None
    kept = [r for r in rows if r["round"] <= up_to_round]
    if not kept or kept[-1]["round"] != up_to_round:
        raise UserError(f"results file '{path}' lacks rounds up to the checkpoint's round {up_to_round}; cannot resume")
    return kept


def _save_npz(path: str, params: Params) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **params)


def load_model_npz(path: str | Path) -> Params:
    """Read a model.npz written by a run (no pickle allowed)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
