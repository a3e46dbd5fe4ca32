"""The FedRef evaluation's data logic, shared by run_study.py and report.py: pure functions on tables.

Stage 1 (tune.yaml) scores every tuning point by its final test accuracy averaged over the tuning
seeds; `select_tuned` keeps the best point per dataset and algorithm, and `eval_space` turns those
into the `setting` dimension of stages 2 and 3 (eval.yaml). `run_summaries` reduces each run to
the numbers the report tabulates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fedref_ray.algorithms.registry import algorithm_class

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TUNE_TRIALS = RESULTS / "tune_trials.parquet"
EVAL_TRIALS = RESULTS / "eval_trials.parquet"
SENSITIVITY_TRIALS = RESULTS / "sensitivity_trials.parquet"
TUNED = RESULTS / "tuned.json"
META = RESULTS / "study_meta.json"

ALGORITHMS = ("fedavg", "fedprox", "fedopt", "fedref")
# The coefficients each algorithm was tuned over (besides training.lr), as config fields: each algorithm's own.
COEFFICIENTS = {a: tuple(f"algorithm.{c}" for c in algorithm_class(a).coefficients) for a in ALGORITHMS}
DATASET_FIELDS = ("data.name", "model.name", "run.target_accuracy")
CELL_FIELDS = ("partition.alpha", "system.faulty_fraction")
# What tells one algorithm setting from another, in every stage.
SETTING_FIELDS = (
    "algorithm.name",
    "algorithm.mu",
    "algorithm.lam",
    "algorithm.server_lr",
    "algorithm.gate_delta",
    "training.lr",
)
# Columns a committed results table keeps (the run folders and wall-clock stamps stay out).
DROP_COLUMNS = ("results_dir", "started_at", "reported_at")


def final_rows(trials: pd.DataFrame) -> pd.DataFrame:
    """Each trial's last reported round."""
    return trials.sort_values(["trial_id", "round"]).groupby("trial_id", sort=False).tail(1)


def tuning_scores(trials: pd.DataFrame) -> pd.DataFrame:
    """Mean (over seeds) final test accuracy of every tuning point; a diverged run (NaN) scores 0."""
    last = final_rows(trials).copy()
    last["test_accuracy"] = last["test_accuracy"].fillna(0.0)
    keys = ["data.name", *(f for f in SETTING_FIELDS if f in last.columns)]
    scores = last.groupby(keys, dropna=False).agg(score=("test_accuracy", "mean"), seeds=("run.seed", "nunique"))
    return scores.reset_index().sort_values(keys).reset_index(drop=True)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def select_tuned(trials: pd.DataFrame, datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One setting per dataset x algorithm: the dataset's fields plus the best-scoring coefficients and lr.

    Ties go to the smallest coefficients, then the smallest learning rate (the sort order of `tuning_scores`).
    """
    scores = tuning_scores(trials)
    settings = []
    for dataset in datasets:
        for algorithm in ALGORITHMS:
            mine = scores[(scores["data.name"] == dataset["data.name"]) & (scores["algorithm.name"] == algorithm)]
            if mine.empty:
                raise ValueError(f"no tuning runs for {dataset['data.name']} / {algorithm}")
            best = mine.loc[mine["score"].idxmax()]
            fields = {"algorithm.name": algorithm, "algorithm.mu": 0.0}
            fields.update({name: _plain(best[name]) for name in COEFFICIENTS[algorithm]})
            fields["training.lr"] = _plain(best["training.lr"])
            settings.append({**dataset, **fields, "tuning_score": round(float(best["score"]), 6)})
    return settings


def eval_space(settings: list[dict[str, Any]]) -> dict[str, Any]:
    """The `setting` joint dimension of the evaluation sweep (the tuning score is not a config field)."""
    return {"grid": [{k: v for k, v in s.items() if k != "tuning_score"} for s in settings]}


def slim(trials: pd.DataFrame) -> pd.DataFrame:
    """A sweep's trials table as committed: no machine paths or clock stamps, rows sorted by every parameter
    (Tune's own trial order varies from run to run)."""
    table = trials.drop(columns=[c for c in DROP_COLUMNS if c in trials.columns])
    keys = [c for c in (*DATASET_FIELDS, *SETTING_FIELDS, *CELL_FIELDS, "run.seed", "round") if c in table.columns]
    return table.sort_values(keys, kind="stable").reset_index(drop=True)


def _to_target(run: pd.DataFrame, target: float) -> tuple[float, float, float]:
    """(round, MB sent down+up, client samples) when the run first reaches `target`; NaNs if it never does."""
    hit = run[run["test_accuracy"] >= target]
    if hit.empty:
        return (np.nan, np.nan, np.nan)
    row = hit.iloc[0]
    return (float(row["round"]), float(row["bytes_total"]) / 1e6, float(row["samples"]))


def run_summaries(trials: pd.DataFrame, variant: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per evaluation run: final/best accuracy, costs to the target, forgetting.

    `variant` names the fields that tell apart runs of one algorithm (a null gate is a key too).
    """
    rows = []
    group = ["data.name", "algorithm.name", *variant, *CELL_FIELDS, "run.seed"]
    for key, run in trials.sort_values("round").groupby(group, sort=True, dropna=False):
        rounds, mb, samples = _to_target(run, float(run["run.target_accuracy"].iloc[0]))
        last = run.iloc[-1]
        rows.append(
            {
                **dict(zip(group, key)),
                "target": float(last["run.target_accuracy"]),
                "rounds": int(last["round"]),
                "final_acc": float(last["test_accuracy"]),
                "best_acc": float(run["test_accuracy"].max()),
                "rounds_to_target": rounds,
                "mb_to_target": mb,
                "samples_to_target": samples,
                "final_forgetting": float(last["forgetting"]),
                "mean_forgetting": float(run["forgetting"].mean()),
                "accuracy_drops": int(last["accuracy_drops"]),
            }
        )
    return pd.DataFrame(rows)
