"""Run or resume a sweep: the sweep folder, per-trial placement groups, the up-front cluster check, the Tuner.

The folder's layout is `fedref_ray.tune.layout`'s; after the trials, trials.parquet and best.json are written.
A sweep holds its folder's lock (`fedref_ray.locking`) from start to end, so two sweeps never share one.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fedref_ray.config import ExperimentConfig
from fedref_ray.errors import UserError
from fedref_ray.imports import user_code_env
from fedref_ray.locking import LOCK_NAME, folder_lock
from fedref_ray.tune import tune_compat
from fedref_ray.tune.layout import EXPERIMENT_NAME, RUNS_DIR, SPEC_FILE, find_sweep_dir
from fedref_ray.tune.space import SweepSpec, dump_sweep, parse_sweep, probe_configs, resolve_point, trial_config
from fedref_ray.tune.tables import write_tables
from fedref_ray.tune.trainable import TrialSetup, train_trial


@dataclass(frozen=True)
class SweepOutcome:
    """How a sweep ended: trial counts by state, the best trial, and the wall time of this call."""

    sweep_dir: Path
    trials: int
    finished: int
    failed: int
    unfinished: int
    best: dict[str, Any] | None
    wall_seconds: float
    error_files: tuple[str, ...] = ()

    @property
    def interrupted(self) -> bool:
        return self.unfinished > 0


def trial_bundles(cfg: ExperimentConfig, trial_cpus: float) -> list[dict[str, float]]:
    """First bundle: the trial driver and the server actor (num_cpus=0); then one bundle per client worker."""
    head = {"CPU": trial_cpus}
    if cfg.engine.name != "ray":
        return [head]
    worker = {"CPU": cfg.engine.cpus_per_worker}
    if cfg.engine.gpus_per_worker > 0:
        worker["GPU"] = cfg.engine.gpus_per_worker
    return [head] + [dict(worker) for _ in range(cfg.engine.num_workers)]


def trial_resources(setup: TrialSetup, trial_cpus: float, point: dict[str, Any]) -> Any:
    """The PlacementGroupFactory of one sampled point (engine fields may be swept too)."""
    cfg = trial_config(setup.base, resolve_point(setup.space, point))
    strategy = "SPREAD" if cfg.engine.placement == "spread" else "PACK"
    return tune_compat.placement_group_factory(trial_bundles(cfg, trial_cpus), strategy)


def _total(bundles: Sequence[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for bundle in bundles:
        for name, amount in bundle.items():
            total[name] = total.get(name, 0.0) + amount
    return total


def _describe(cfg: ExperimentConfig, trial_cpus: float) -> str:
    ec = cfg.engine
    if ec.name != "ray":
        return f"trial_cpus={trial_cpus:g}"
    workers = f"engine.num_workers={ec.num_workers} x engine.cpus_per_worker={ec.cpus_per_worker:g}"
    text = f"trial_cpus={trial_cpus:g} + {workers}"
    return text + (f", engine.gpus_per_worker={ec.gpus_per_worker:g}" if ec.gpus_per_worker > 0 else "")


def check_cluster(spec: SweepSpec, cluster: dict[str, float], nodes: Sequence[dict[str, float]]) -> None:
    """Fail up front when the largest trial cannot be placed (Tune would otherwise wait for ever)."""
    for cfg in probe_configs(spec):
        bundles = trial_bundles(cfg, spec.trial_cpus)
        what = _describe(cfg, spec.trial_cpus)
        for name, need in _total(bundles).items():
            if need > cluster.get(name, 0.0) + 1e-9:
                raise UserError(
                    f"one trial needs {need:g} {name} ({what}) but the Ray cluster has {cluster.get(name, 0.0):g}: "
                    "shrink the trial, or start Ray with more (ray_num_cpus in the sweep file, --ray-num-cpus)"
                )
        for bundle in bundles:
            if not any(all(node.get(k, 0.0) + 1e-9 >= v for k, v in bundle.items()) for node in nodes):
                raise UserError(f"a trial bundle {bundle} ({what}) fits on no single node of the Ray cluster")


def _setup(spec: SweepSpec, sweep_dir: Path) -> TrialSetup:
    return TrialSetup(base=spec.base, space=spec.space, runs_dir=str((sweep_dir / RUNS_DIR).resolve()))


def _wrapped(spec: SweepSpec, setup: TrialSetup) -> tuple[Any, Any]:
    trainable = tune_compat.with_parameters(train_trial, setup=setup)
    return trainable, functools.partial(trial_resources, setup, spec.trial_cpus)


def default_sweep_dir(spec: SweepSpec) -> Path:
    """results/tune-<sweep file name>-<time>, unless the sweep file names one."""
    if spec.results_dir is not None:
        return Path(spec.results_dir)
    return Path("results") / f"tune-{Path(spec.source).stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def _prepare(sweep_dir: Path) -> None:
    if sweep_dir.exists() and (not sweep_dir.is_dir() or any(p.name != LOCK_NAME for p in sweep_dir.iterdir())):
        raise UserError(
            f"sweep folder '{sweep_dir}' exists and is not empty: resume it with fedref-ray tune --resume {sweep_dir}, "
            "or choose another --results-dir"
        )
    sweep_dir.mkdir(parents=True, exist_ok=True)


def _run(spec: SweepSpec, sweep_dir: Path, make_tuner: Any, began: float) -> SweepOutcome:
    """Connect, check the cluster, fit, and write the tables (even after an interrupt)."""
    names = {n for c in probe_configs(spec) for n in (c.model.name, c.data.name, c.algorithm.name)}
    started = tune_compat.connect(str(spec.base["engine"]["address"]), spec.ray_num_cpus, user_code_env(names))
    try:
        check_cluster(spec, tune_compat.cluster_resources(), tune_compat.node_resources())
        tune_compat.fit(make_tuner())
    finally:
        if started:
            tune_compat.disconnect()
    states = tune_compat.load_trials(sweep_dir / EXPERIMENT_NAME)
    best = write_tables(sweep_dir, spec, states, sweep_dir / RUNS_DIR)
    count = {s: sum(t.status == s for t in states) for s in (tune_compat.FINISHED, tune_compat.FAILED)}
    finished, failed = count[tune_compat.FINISHED], count[tune_compat.FAILED]
    errors = tuple(s.error_file or s.trial_id for s in states if s.status == tune_compat.FAILED)
    unfinished = len(states) - finished - failed
    return SweepOutcome(sweep_dir, len(states), finished, failed, unfinished, best, time.perf_counter() - began, errors)


def run_sweep(spec: SweepSpec, sweep_dir: Path | None = None, *, quiet: bool = False) -> SweepOutcome:
    """Run every trial of a validated sweep into a new (or empty) sweep folder."""
    began = time.perf_counter()
    sweep_dir = Path(sweep_dir) if sweep_dir is not None else default_sweep_dir(spec)
    with folder_lock(sweep_dir, field="--results-dir"):  # first: a running sweep is named, not called "not empty"
        _prepare(sweep_dir)
        return _start_sweep(spec, sweep_dir, quiet, began)


def _start_sweep(spec: SweepSpec, sweep_dir: Path, quiet: bool, began: float) -> SweepOutcome:
    (sweep_dir / SPEC_FILE).write_text(dump_sweep(spec))
    trainable, resources = _wrapped(spec, _setup(spec, sweep_dir))
    max_t = max(c.run.rounds for c in probe_configs(spec))

    def make_tuner() -> Any:
        return tune_compat.build_tuner(
            trainable,
            resources,
            spec.space,
            storage_path=sweep_dir,
            name=EXPERIMENT_NAME,
            scheduler=spec.scheduler,
            max_t=max_t,
            num_samples=spec.num_samples,
            seed=spec.seed,
            max_concurrent_trials=spec.max_concurrent_trials,
            quiet=quiet,
        )

    return _run(spec, sweep_dir, make_tuner, began)


def sweep_dir_of(path: str | Path) -> Path:
    """The sweep folder for `path`, checked to hold a Tune experiment that can be restored."""
    p = find_sweep_dir(path)
    if not tune_compat.can_restore(p / EXPERIMENT_NAME):
        raise UserError(f"--resume '{path}': no Tune experiment state in {p / EXPERIMENT_NAME} (did the sweep start?)")
    return p


def load_saved_spec(sweep_dir: Path, ray_num_cpus: int | None = None) -> SweepSpec:
    """The spec saved in a sweep folder, optionally with another number of CPUs to declare."""
    path = sweep_dir / SPEC_FILE
    raw = yaml.safe_load(path.read_text())
    spec = parse_sweep(raw, str(path), sweep_dir)
    return dataclasses.replace(spec, ray_num_cpus=ray_num_cpus) if ray_num_cpus is not None else spec


def resume_sweep(path: str | Path, *, ray_num_cpus: int | None = None) -> SweepOutcome:
    """Resume an interrupted sweep: finished trials are kept, the others run (from their last checkpoint)."""
    began = time.perf_counter()
    sweep_dir = sweep_dir_of(path)
    with folder_lock(sweep_dir, field="--resume"):
        spec = load_saved_spec(sweep_dir, ray_num_cpus)
        trainable, resources = _wrapped(spec, _setup(spec, sweep_dir))

        def restore() -> Any:
            return tune_compat.restore_tuner(sweep_dir / EXPERIMENT_NAME, trainable, resources)

        return _run(spec, sweep_dir, restore, began)
