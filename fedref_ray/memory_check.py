"""Refuse, before any work, a run that cannot fit in this machine's memory, with the estimate in the message.

The estimate is deliberately rough and generous to the run: the data (the driver's copy plus one in
Ray's object store), per worker process a torch import (~350 MiB) and a few copies of the model
(weights, gradients, optimizer buffer, flat copies). A run joining a cluster is not checked: its
workers use other machines' memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedref_ray.config import ExperimentConfig
from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.errors import UserError
from fedref_ray.params import Params, num_bytes

GIB = 1024**3
WORKER_PROCESS_BYTES = 350 * 1024**2
MODEL_COPIES_PER_WORKER = 8
RAY_BASE_BYTES = 600 * 1024**2


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None where the file does not exist)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def estimate_bytes(cfg: ExperimentConfig, arrays: DatasetArrays, start: Params) -> int:
    data = int(sum(np.asarray(a).nbytes for a in (arrays.x_train, arrays.y_train, arrays.x_test, arrays.y_test)))
    on_ray = cfg.engine.name == "ray"
    workers = cfg.engine.num_workers if on_ray else 1
    per_worker = WORKER_PROCESS_BYTES + MODEL_COPIES_PER_WORKER * num_bytes(start)
    return data * (2 if on_ray else 1) + workers * per_worker + (RAY_BASE_BYTES if on_ray else 0)


def check_fits(cfg: ExperimentConfig, arrays: DatasetArrays, start: Params) -> None:
    """A UserError naming the estimate and what to change when the run needs more memory than is available."""
    if cfg.engine.name == "ray" and cfg.engine.address:
        return
    free = available_bytes()
    need = estimate_bytes(cfg, arrays, start)
    if free is not None and need > free:
        raise UserError(
            f"this run needs about {need / GIB:.1f} GiB (data {arrays.x_train.nbytes / GIB:.2f} GiB, "
            f"{cfg.engine.num_workers if cfg.engine.name == 'ray' else 1} worker(s) with a "
            f"{num_bytes(start) / 1024**2:.0f} MiB model) but this machine has {free / GIB:.1f} GiB available: "
            "use fewer engine.num_workers, a smaller model or dataset, or a cluster (engine.address)"
        )
