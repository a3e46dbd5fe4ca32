"""Run one experiment end to end: data, engine, round loop, results, progress."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fedref_ray.config import ExperimentConfig
from fedref_ray.data.prepare import prepare_data
from fedref_ray.engine import create_engine, initial_params
from fedref_ray.metrics import RoundRecord
from fedref_ray.params import Params
from fedref_ray.results import ResultsWriter, prepare_results_dir


@dataclass(frozen=True)
class RunResult:
    """What a finished run leaves: its folder, final model and summary."""

    results_dir: Path
    params: Params
    summary: dict


def run_experiment(
    cfg: ExperimentConfig,
    *,
    quiet: bool = False,
    overwrite: bool = False,
    on_round: Callable[[RoundRecord], None] | None = None,
) -> RunResult:
    """Prepare everything that can fail on user input first, then run every round and write results.

    `on_round` sees each round's record after it is written (Tune reports through it).
    """
    began = time.perf_counter()
    arrays, data = prepare_data(cfg)
    start = initial_params(cfg, arrays.input_shape, arrays.num_classes)
    out = prepare_results_dir(cfg.run.results_dir, overwrite)
    writer = ResultsWriter(out, cfg)
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=cfg.run.rounds, desc=f"{cfg.algorithm.name}", unit="round")
    try:
        with create_engine(cfg, arrays, data, start) as engine:
            for _ in range(cfg.run.rounds):
                record, clients = engine.run_round()
                writer.add(record, clients)
                if on_round is not None:
                    on_round(record)
                if bar is not None:
                    bar.set_postfix(acc=f"{record.test_accuracy:.3f}", loss=f"{record.test_loss:.3f}")
                    bar.update(1)
            params = engine.params()
    finally:
        if bar is not None:
            bar.close()
    summary = writer.finish(params, time.perf_counter() - began)
    return RunResult(out, params, summary)
