"""The sweep folder's layout, shared by the runner, the trainable, the tables and the report.

SWEEP_DIR/sweep.yaml       the validated spec, self-contained (read back by --resume)
SWEEP_DIR/tune/            Tune's experiment: state, checkpoints, TensorBoard and CSV logs per trial
SWEEP_DIR/runs/<trial_id>/ each trial's simulation results (config.yaml, rounds.parquet, summary.json, ...)
SWEEP_DIR/trials.parquet   every trial x every round, parameters as columns
SWEEP_DIR/best.json        the best trial
"""

from __future__ import annotations

from pathlib import Path

from fedref_ray.errors import UserError

SPEC_FILE = "sweep.yaml"
EXPERIMENT_NAME = "tune"
RUNS_DIR = "runs"
TRIALS_FILE = "trials.parquet"
BEST_FILE = "best.json"
SUMMARY_FILE = "summary.json"  # written by a simulation when its last round is done
CHECKPOINTS_DIR = "checkpoints"  # a simulation's own checkpoints (round-NNNNNN), with run.checkpoint_every


def trial_results_dir(runs_dir: str | Path, trial_id: str) -> Path:
    """The simulation's results folder of one trial."""
    return Path(runs_dir) / trial_id


def is_sweep_dir(path: str | Path) -> bool:
    """A folder holding a sweep's trials.parquet (what `fedref-ray report` draws a sweep report for)."""
    return (Path(path) / TRIALS_FILE).is_file()


def find_sweep_dir(path: str | Path) -> Path:
    """The sweep folder that `path` names: the folder itself, or the parent of its `tune/` experiment."""
    p = Path(path)
    if not (p / SPEC_FILE).is_file() and p.name == EXPERIMENT_NAME and (p.parent / SPEC_FILE).is_file():
        p = p.parent
    if not (p / SPEC_FILE).is_file():
        raise UserError(f"--resume '{path}' is not a sweep folder: it has no {SPEC_FILE}")
    return p
