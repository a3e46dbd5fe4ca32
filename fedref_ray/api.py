"""The Python API: `run` one experiment and `sweep` a Tune search, with results as DataFrames.

A config is a YAML path, a nested dict (the YAML's shape) or an `ExperimentConfig`; dotted
overrides apply on top, exactly as on the command line (the CLI is a thin layer over these two
functions). Mistakes raise `UserError` carrying the CLI's one-line message.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedref_ray.config import (
    ExperimentConfig,
    apply_overrides,
    build_config,
    config_fingerprint,
    load_results_config,
    read_yaml,
)
from fedref_ray.errors import UserError
from fedref_ray.params import Params

if TYPE_CHECKING:
    import pandas as pd

ConfigLike = str | Path | Mapping[str, Any] | ExperimentConfig | None


@dataclass(frozen=True)
class RunResult:
    """A finished run: its folder, rounds.parquet and clients.parquet as DataFrames, its summary and final model."""

    results_dir: Path
    rounds: pd.DataFrame
    clients: pd.DataFrame
    summary: dict[str, Any]
    params: Params


@dataclass(frozen=True)
class SweepResult:
    """A finished (or interrupted) sweep: its folder, trials.parquet as a DataFrame, and how the trials ended."""

    sweep_dir: Path
    trials: pd.DataFrame
    outcome: Any  # fedref_ray.tune.runner.SweepOutcome: counts by state, the best trial, wall time


def raw_config(config: ConfigLike) -> dict[str, Any]:
    """The nested-dict form of any accepted config (a copy: the caller's dict is never changed)."""
    if config is None:
        return {}
    if isinstance(config, ExperimentConfig):
        return config.to_dict()
    if isinstance(config, Mapping):
        return copy.deepcopy(dict(config))
    if isinstance(config, (str, Path)):
        return read_yaml(config)
    raise UserError(f"config must be a YAML path, a dict or an ExperimentConfig, got {type(config).__name__}")


def make_config(config: ConfigLike = None, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The validated experiment: `config` with dotted overrides applied, and a results folder chosen."""
    return with_results_dir(build_config(apply_overrides(raw_config(config), list(overrides))))


def with_results_dir(cfg: ExperimentConfig) -> ExperimentConfig:
    """Fill a null run.results_dir with results/<algorithm>-seed<seed>-<time>."""
    if cfg.run.results_dir is not None:
        return cfg
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = cfg.algorithm.name.rsplit(":", 1)[-1].lower()  # a user algorithm's class name
    path = f"results/{name}-seed{cfg.run.seed}-{stamp}"
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, results_dir=path))


def resume_config(results_dir: str | Path, config: ConfigLike, overrides: Sequence[str]) -> ExperimentConfig:
    """The folder's config, with overrides on top; anything but `engine.*` must still describe the same run."""
    saved = load_results_config(results_dir)
    raw = raw_config(config) if config is not None else read_yaml(Path(results_dir) / "config.yaml")
    given = build_config(apply_overrides(raw, [*overrides, f"run.results_dir={results_dir}"]))
    if config_fingerprint(given) != config_fingerprint(saved):
        a, b = given.to_dict(), saved.to_dict()
        keys = [(s, k) for s in a for k in {**a[s], **b[s]} if s != "engine" and k != "results_dir"]
        diff = next(f"{s}.{k}" for s, k in keys if a[s].get(k) != b[s].get(k))
        raise UserError(
            f"--resume {results_dir}: {diff} differs from the folder's config.yaml; resume with the same config"
        )
    return given


def run(
    config: ConfigLike = None,
    overrides: Sequence[str] = (),
    *,
    quiet: bool = True,
    overwrite: bool = False,
    resume: str | Path | None = None,
) -> RunResult:
    """Run one experiment (or continue the one in `resume`, a results folder) and return its results.

    `rounds` and `clients` are read back from the rounds.parquet and clients.parquet the run wrote.
    A SIGINT or SIGTERM ends the run after a checkpoint with `fedref_ray.simulation.RunInterrupted`.
    """
    import pandas as pd

    from fedref_ray.simulation import run_experiment  # imports torch: only once the config is valid

    cfg = resume_config(resume, config, overrides) if resume is not None else make_config(config, overrides)
    done = run_experiment(cfg, quiet=quiet, overwrite=overwrite, resume=resume is not None)
    out = done.results_dir
    return RunResult(out, pd.read_parquet(out / "rounds.parquet"), _clients(out), done.summary, done.params)


def _clients(out: Path) -> pd.DataFrame:
    import pandas as pd

    path = out / "clients.parquet"
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame()


def sweep(
    sweep_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    results_dir: str | Path | None = None,
    quiet: bool = True,
    ray_num_cpus: int | None = None,
    resume: str | Path | None = None,
) -> SweepResult:
    """Run a Tune sweep file (overrides apply to its base config), or resume the sweep folder `resume`."""
    import pandas as pd

    from fedref_ray.tune.layout import TRIALS_FILE, find_sweep_dir
    from fedref_ray.tune.space import load_sweep

    if ray_num_cpus is not None and ray_num_cpus < 1:
        raise UserError(f"--ray-num-cpus={ray_num_cpus} is not allowed: an integer >= 1")
    if resume is not None:
        if sweep_file is not None or overrides or results_dir is not None:
            raise UserError("--resume takes only the sweep folder: its sweep.yaml holds the sweep file and overrides")
        sweep_dir = find_sweep_dir(resume)  # before importing Ray
        from fedref_ray.tune.runner import resume_sweep

        outcome = resume_sweep(sweep_dir, ray_num_cpus=ray_num_cpus)
    else:
        if sweep_file is None:
            raise UserError("tune needs a sweep file first: fedref-ray tune SWEEP.yaml [section.key=value ...]")
        spec = load_sweep(sweep_file, list(overrides))
        if ray_num_cpus is not None:
            spec = dataclasses.replace(spec, ray_num_cpus=ray_num_cpus)
        from fedref_ray.tune.runner import run_sweep

        outcome = run_sweep(spec, None if results_dir is None else Path(results_dir), quiet=quiet)
    table = outcome.sweep_dir / TRIALS_FILE
    return SweepResult(outcome.sweep_dir, pd.read_parquet(table) if table.is_file() else pd.DataFrame(), outcome)
