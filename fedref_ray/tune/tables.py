"""A sweep's results as data: trials.parquet (every trial x every round, parameters as columns) and best.json.

Parameter columns are named by their config field (`algorithm.mu`, `partition.alpha`, ...); every
other column is a trial attribute or a reported metric (`fedref_ray.tune.metrics`). Paths under the home
folder are written as `~/...` (`fedref_ray.paths`), as in config.yaml.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fedref_ray.algorithms.registry import algorithm_class
from fedref_ray.paths import home_as_tilde
from fedref_ray.results import atomic_write
from fedref_ray.tune.layout import BEST_FILE, SUMMARY_FILE, TRIALS_FILE, trial_results_dir
from fedref_ray.tune.metrics import METRIC_NAMES, TIME_NAMES
from fedref_ray.tune.space import SweepSpec, resolve_point, sweep_algorithms, trial_config
from fedref_ray.tune.tune_compat import FINISHED, TrialState

# Always present, so the sweep report can plot against them even when they are not swept; the sweep's
# algorithms add their own coefficients (each algorithm's `coefficients` says which).
REPORT_FIELDS = (
    "algorithm.name",
    "partition.alpha",
    "run.seed",
    "run.rounds",
    "run.target_accuracy",
)
TRIAL_COLUMNS = ("trial_id", "status", "stopped_early", "results_dir")


def param_columns(spec: SweepSpec) -> list[str]:
    """The swept fields, then the report fields and the sweep's algorithms' coefficients that are not swept."""
    coefficients = [f"algorithm.{c}" for name in sweep_algorithms(spec) for c in algorithm_class(name).coefficients]
    return list(dict.fromkeys([*spec.fields(), *REPORT_FIELDS[:1], *coefficients, *REPORT_FIELDS[1:]]))


def _field_value(config: Mapping[str, Any], field: str) -> Any:
    """The trial's value of `field`; None for a coefficient its algorithm does not have."""
    section, _, key = field.partition(".")
    return config[section].get(key)


def trial_rows(spec: SweepSpec, state: TrialState, runs_dir: Path) -> list[dict[str, Any]]:
    """One row per reported round of one trial (a round reported twice keeps its last report)."""
    if state.rows.empty or "round" not in state.rows:
        return []
    config = trial_config(spec.base, resolve_point(spec.space, state.point)).to_dict()
    params = {name: home_as_tilde(_field_value(config, name)) for name in param_columns(spec)}
    frame = state.rows.dropna(subset=["round"]).astype({"round": int})  # Tune's own rows carry no round
    frame = frame.drop_duplicates("round", keep="last").sort_values("round")
    if frame.empty:
        return []
    last_round = int(frame["round"].iloc[-1])
    trial = {
        "trial_id": state.trial_id,
        "status": state.status,
        "stopped_early": state.status == FINISHED and last_round < config["run"]["rounds"],
        "results_dir": home_as_tilde(str(trial_results_dir(runs_dir, state.trial_id))),
    }
    names = [n for n in (*METRIC_NAMES, *TIME_NAMES) if n in frame.columns]
    return [{**trial, **params, **{n: row[n] for n in names}} for row in frame.to_dict("records")]


def trials_table(spec: SweepSpec, states: Sequence[TrialState], runs_dir: Path) -> pd.DataFrame:
    """Every trial x every reported round, trials in Tune's order."""
    rows = [row for state in states for row in trial_rows(spec, state, runs_dir)]
    columns = [*TRIAL_COLUMNS, *param_columns(spec), *METRIC_NAMES, *TIME_NAMES]
    return pd.DataFrame(rows, columns=columns).astype({"round": "int64"}) if rows else pd.DataFrame(columns=columns)


def _plain(value: Any) -> Any:
    """numpy scalars and NaN as JSON values."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def best_trial(spec: SweepSpec, table: pd.DataFrame) -> dict[str, Any] | None:
    """The trial with the best last-round value of the scheduler's metric, among trials that ran every round.

    Trials stopped early (or still unfinished) count only when no trial ran to the end.
    """
    metric, mode = spec.scheduler.metric, spec.scheduler.mode
    last = table.sort_values("round").groupby("trial_id", sort=False).tail(1).dropna(subset=[metric])
    complete = last[(last["status"] == FINISHED) & ~last["stopped_early"].astype(bool)]
    pool = complete if len(complete) else last
    if pool.empty:
        return None
    row = pool.loc[pool[metric].idxmax() if mode == "max" else pool[metric].idxmin()]
    summary_path = Path(row["results_dir"]).expanduser() / SUMMARY_FILE
    return {
        "metric": metric,
        "mode": mode,
        "value": _plain(row[metric]),
        "round": int(row["round"]),
        "trial_id": row["trial_id"],
        "params": {name: _plain(row[name]) for name in spec.fields()},
        "results_dir": row["results_dir"],
        "summary": json.loads(summary_path.read_text()) if summary_path.is_file() else None,
    }


def write_tables(
    sweep_dir: Path, spec: SweepSpec, states: Sequence[TrialState], runs_dir: Path
) -> dict[str, Any] | None:
    """Write trials.parquet and best.json (atomically); return the best trial's record."""
    table = trials_table(spec, states, runs_dir)
    atomic_write(sweep_dir / TRIALS_FILE, lambda tmp: table.to_parquet(tmp, index=False))
    best = best_trial(spec, table) if len(table) else None
    atomic_write(sweep_dir / BEST_FILE, lambda tmp: Path(tmp).write_text(json.dumps(best, indent=2) + "\n"))
    return best
