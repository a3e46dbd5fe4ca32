"""A run's identity: a random run id in `<results folder>/run.json`, copied into every checkpoint.

Resume refuses a checkpoint whose run id is not the folder's, so files of two runs are never mixed.
Folders written before run ids existed have no run.json; their checkpoints carry none either.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from fedref_ray.errors import UserError

RUN_FILE = "run.json"


def new_run_id() -> str:
    return uuid.uuid4().hex


def write_run_id(folder: Path, run_id: str) -> None:
    """Record `run_id` as the folder's run (atomically)."""
    from fedref_ray.results import atomic_write

    text = json.dumps({"run_id": run_id}, indent=2) + "\n"
    atomic_write(folder / RUN_FILE, lambda tmp: Path(tmp).write_text(text))


def read_run_id(folder: Path) -> str | None:
    """The folder's run id, None for a folder without run.json; a UserError naming a damaged run.json."""
    path = folder / RUN_FILE
    if not path.is_file():
        return None
    try:
        run_id = json.loads(path.read_text())["run_id"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f'results file \'{path}\' is corrupted (want {{"run_id": "<hex>"}})') from None
    if not isinstance(run_id, str) or not run_id:
        raise UserError(f'results file \'{path}\' is corrupted (want {{"run_id": "<hex>"}})')
    return run_id
