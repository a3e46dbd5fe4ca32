"""Every Ray and Ray Tune call of the sweep code, in one place: their forms change across Ray versions.

Written against Ray 2.60: `tune.report(metrics, checkpoint=...)`, `tune.get_checkpoint()`,
`tune.get_context()`, `Tuner` / `Tuner.restore`, `ExperimentAnalysis` to read a finished or
interrupted experiment back.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator

from fedref_ray.tune.space import Dimension, SchedulerSpec, point_label

PROGRESS_FILE = "progress.json"
FINISHED = "TERMINATED"
FAILED = "ERROR"


@dataclass(frozen=True)
class TrialState:
    """One trial as Tune recorded it: id, status, sampled point, and its reported rows (one per report)."""

    trial_id: str
    status: str
    point: dict[str, Any]
    rows: pd.DataFrame
    error_file: str | None  # where Tune wrote a failed trial's traceback


def connect(address: str, num_cpus: int | None, runtime_env: dict[str, Any] | None = None) -> bool:
    """Join a running Ray (`address`, else RAY_ADDRESS) or start a local one; True when this call started it.

    `runtime_env` ships the user's own modules to every trial and worker."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if runtime_env:
        kwargs["runtime_env"] = runtime_env
    address = address or os.environ.get("RAY_ADDRESS", "")
    if address:
        ray.init(address=address, **kwargs)
    else:  # "local": without it ray.init joins any `ray start` cluster on this machine
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **kwargs)
    return True


def disconnect() -> None:
    if ray.is_initialized():
        ray.shutdown()


def cluster_resources() -> dict[str, float]:
    return dict(ray.cluster_resources())


def node_resources() -> list[dict[str, float]]:
    """The total resources of each live node (a bundle must fit on one)."""
    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]


def to_tune_space(space: Sequence[Dimension]) -> dict[str, Any]:
    """Tune's param_space: one search domain per dimension, keyed by the dimension's name."""
    makers: dict[str, Callable[..., Any]] = {
        "grid": lambda values: tune.grid_search(list(values)),
        "choice": lambda values: tune.choice(list(values)),
        "uniform": lambda values: tune.uniform(*values),
        "loguniform": lambda values: tune.loguniform(*values),
        "randint": lambda values: tune.randint(*values),
    }
    return {d.name: makers[d.kind](d.values) for d in space}


def placement_group_factory(bundles: list[dict[str, float]], strategy: str) -> tune.PlacementGroupFactory:
    """The trial's resources; the function trainable runs in the first bundle."""
    return tune.PlacementGroupFactory(bundles, strategy=strategy)


def _scheduler(spec: SchedulerSpec, max_t: int) -> Any:
    if spec.name == "asha":
        return ASHAScheduler(
            time_attr="round",
            metric=spec.metric,
            mode=spec.mode,
            max_t=max_t,
            grace_period=spec.grace_period,
            reduction_factor=spec.reduction_factor,
        )
    return FIFOScheduler()


def trial_dirname(trial: Any) -> str:
    """Tune's folder of a trial (TensorBoard run name): the trial id and its sampled values."""
    flat = {
        k: v
        for key, value in trial.config.items()
        for k, v in (value.items() if isinstance(value, dict) else [(key, value)])
    }
    return f"{trial.trial_id}_{point_label(flat, limit=60)}"


def build_tuner(
    trainable: Callable[..., None],
    resources: Callable[[dict], tune.PlacementGroupFactory],
    space: Sequence[Dimension],
    *,
    storage_path: Path,
    name: str,
    scheduler: SchedulerSpec,
    max_t: int,
    num_samples: int,
    seed: int,
    max_concurrent_trials: int | None,
    quiet: bool,
) -> tune.Tuner:
    """A Tuner whose trials each run in their own placement group and keep their latest checkpoint."""
    return tune.Tuner(
        tune.with_resources(trainable, resources),
        param_space=to_tune_space(space),
        tune_config=tune.TuneConfig(
            scheduler=_scheduler(scheduler, max_t),
            # the variant generator takes the concurrency cap itself (TuneConfig's is for Searchers only)
            search_alg=BasicVariantGenerator(random_state=seed, max_concurrent=max_concurrent_trials or 0),
            num_samples=num_samples,
            trial_dirname_creator=trial_dirname,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(storage_path.resolve()),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),  # tiny; a cap forces a state snapshot per report
            verbose=0 if quiet else 1,
        ),
    )


def restore_tuner(
    experiment_path: Path, trainable: Callable[..., None], resources: Callable[[dict], Any]
) -> tune.Tuner:
    """The interrupted experiment, to be fitted again: unfinished and errored trials run, finished ones do not."""
    return tune.Tuner.restore(
        str(experiment_path.resolve()),
        trainable=tune.with_resources(trainable, resources),
        resume_unfinished=True,
        resume_errored=True,
    )


def can_restore(experiment_path: Path) -> bool:
    return tune.Tuner.can_restore(str(experiment_path.resolve()))


def fit(tuner: tune.Tuner) -> None:
    """Run (or resume) every trial; trial errors are recorded per trial, and Ctrl+C stops after saving state."""
    tuner.fit()


def with_parameters(trainable: Callable[..., None], **kwargs: Any) -> Callable[..., None]:
    return tune.with_parameters(trainable, **kwargs)


def load_trials(experiment_path: Path) -> list[TrialState]:
    """Every trial of an experiment folder as Tune last saved it, with its reported rows."""
    analysis = tune.ExperimentAnalysis(str(experiment_path.resolve()))
    frames = analysis.trial_dataframes
    states = []
    for trial in analysis.trials:
        rows = frames.get(trial.trial_id, pd.DataFrame())
        error_file = trial.error_file if trial.status == FAILED else None
        states.append(TrialState(trial.trial_id, trial.status, dict(trial.config), rows, error_file))
    return states


# --- inside a trial -------------------------------------------------------------------------------


def trial_id() -> str:
    return tune.get_context().get_trial_id()


def checkpointed_round() -> int:
    """The last round Tune holds a checkpoint for (0 for a fresh trial)."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as folder:
        return int(json.loads((Path(folder) / PROGRESS_FILE).read_text())["round"])


def report_round(metrics: Mapping[str, Any], round_: int) -> None:
    """Report one round's metrics with a checkpoint that records the round (resume starts after it)."""
    with tempfile.TemporaryDirectory(prefix="fedref-round-") as folder:
        (Path(folder) / PROGRESS_FILE).write_text(json.dumps({"round": round_}))
        tune.report(dict(metrics), checkpoint=tune.Checkpoint.from_directory(folder))
