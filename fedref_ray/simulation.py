"""Run one experiment end to end: data, engine, round loop, checkpoints, results, progress.

SIGINT and SIGTERM let the current round finish, write a checkpoint and the
results so far, shut the engine down and raise `RunInterrupted`.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedref_ray.algorithms import build_algorithm
from fedref_ray.checkpoint import ServerSnapshot, list_checkpoints, load_checkpoint, save_checkpoint
from fedref_ray.config import ExperimentConfig, config_fingerprint
from fedref_ray.data.prepare import prepare_data
from fedref_ray.engine import Engine, create_engine, initial_params
from fedref_ray.errors import EngineFailure, RunInterrupted, UserError
from fedref_ray.locking import folder_lock
from fedref_ray.memory_check import check_fits
from fedref_ray.metrics import RoundRecord
from fedref_ray.params import Params
from fedref_ray.results import ResultsWriter, prepare_results_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinishedRun:
    """What a finished run leaves: its folder, final model and summary."""

    results_dir: Path
    params: Params
    summary: dict


class DivergenceWatch:
    """Warns once (log and summary.json `warnings`) when the clients' training loss turns non-finite or grows
    a hundredfold over its first finite value, or every update of a round is rejected: a learning rate too
    large, or corrupted clients."""

    GROWTH = 100.0

    def __init__(self) -> None:
        self.first: float | None = None
        self.warnings: list[str] = []

    def check(self, record: RoundRecord) -> None:
        loss = record.train_loss
        if self.warnings:
            return
        if math.isfinite(loss) and self.first is None:
            self.first = loss
            return
        if record.clients_rejected and not record.clients_reported:
            message = f"round {record.round}: every client update was rejected; training diverged or is corrupted"
        elif not math.isfinite(loss) and record.clients_reported > 0:
            message = f"round {record.round}: the clients' training loss is {loss}; training diverged"
        elif self.first is not None and math.isfinite(loss) and loss > self.GROWTH * max(self.first, 1e-12):
            message = (
                f"round {record.round}: the clients' training loss {loss:.4g} is over {self.GROWTH:g}x its first "
                f"value {self.first:.4g}; training is diverging (try a smaller training.lr)"
            )
        else:
            return
        self.warnings.append(message)
        log.warning(message)


class StopRequest:
    """Set by SIGINT/SIGTERM; a second signal aborts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None

    def handle(self, signum: int, _frame: object) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def install(self) -> dict[int, object]:
        """Make `handle` the handler of SIGINT and SIGTERM again; return the handlers it replaced.

        Called once the engine has started too: ray.init() sets its own SIGTERM handler (sys.exit), which
        would end the run mid-round with exit 15, no checkpoint and no resume hint.
        """
        if threading.current_thread() is not threading.main_thread():
            return {}  # signal handlers can only be set from the main thread (e.g. inside Tune trials)
        return {s: signal.signal(s, self.handle) for s in self.SIGNALS}


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    request = StopRequest()
    previous = request.install()
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def latest_checkpoint(cfg: ExperimentConfig, out: Path, expected: Params) -> ServerSnapshot:
    """The newest checkpoint of a results folder, verified against its config and model."""
    found = list_checkpoints(out / "checkpoints")
    if not found:
        raise UserError(f"'{out}' has no checkpoint to resume from (set run.checkpoint_every to write them)")
    state_type = type(build_algorithm(cfg.algorithm).init_state(expected))
    return load_checkpoint(found[-1], config_fingerprint(cfg), expected, state_type)


def run_experiment(cfg: ExperimentConfig, **options: Any) -> FinishedRun:
    """Run (or resume) `cfg` holding its results folder's lock throughout; see `_run_experiment` for `options`.

    A second run, resume or overwrite of the same folder is refused at once, naming the process holding it.
    """
    with folder_lock(str(cfg.run.results_dir)):
        return _run_experiment(cfg, **options)


def _run_experiment(
    cfg: ExperimentConfig,
    *,
    quiet: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    on_round: Callable[[RoundRecord], None] | None = None,
) -> FinishedRun:
    """Prepare everything that can fail on user input first, then run the remaining rounds and write results.

    `on_round` sees each round's record after it is written (Tune reports through it).
    """
    began = time.perf_counter()
    arrays, data = prepare_data(cfg)
    start = initial_params(cfg, arrays.input_shape, arrays.num_classes)
    check_fits(cfg, arrays, start)
    if resume:
        out = Path(str(cfg.run.results_dir)).expanduser()
        snapshot: ServerSnapshot | None = latest_checkpoint(cfg, out, start)
        done = snapshot.round
        if done >= cfg.run.rounds and (out / "summary.json").is_file():
            raise UserError(f"'{out}' is already complete ({done} of run.rounds={cfg.run.rounds}); nothing to resume")
        writer = ResultsWriter(out, cfg, resume_round=done)
    else:
        snapshot, done = None, 0
        out = prepare_results_dir(str(cfg.run.results_dir), overwrite)
        writer = ResultsWriter(out, cfg)
    divergence = DivergenceWatch()
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=cfg.run.rounds, initial=done, desc=cfg.algorithm.name, unit="round")
    try:
        with stop_on_signals() as stop, create_engine(cfg, arrays, data, start) as engine:
            stop.install()  # again: starting Ray replaced the SIGTERM handler
            if snapshot is not None:
                engine.restore(snapshot)
            for round_ in range(done + 1, cfg.run.rounds + 1):
                record, clients = engine.run_round()
                writer.add(record, clients)
                if record.clients_rejected:
                    log.warning(
                        "round %d: rejected %d client updates (non-finite, or beyond algorithm.max_update_ratio)",
                        round_, record.clients_rejected,
                    )  # fmt: skip
                divergence.check(record)
                if on_round is not None:
                    on_round(record)
                if bar is not None:
                    bar.set_postfix(acc=f"{record.test_accuracy:.3f}", loss=f"{record.test_loss:.3f}")
                    bar.update(1)
                every = cfg.run.checkpoint_every
                if stop.signum is not None or (every and (round_ % every == 0 or round_ == cfg.run.rounds)):
                    writer.flush()  # rows first: a checkpoint must never be ahead of the results files
                    checkpoint(engine, cfg, out)
                if stop.signum is not None:
                    raise RunInterrupted(out, round_, stop.signum)
            params = engine.params()
    except BaseException as exc:
        writer.flush()  # keep every finished round's rows, whatever stopped the run
        if isinstance(exc, EngineFailure):
            exc.results_dir = out
        raise
    finally:
        if bar is not None:
            bar.close()
    summary = writer.finish(params, time.perf_counter() - began, divergence.warnings)
    return FinishedRun(out, params, summary)


def checkpoint(engine: Engine, cfg: ExperimentConfig, out: Path) -> Path:
    return save_checkpoint(out / "checkpoints", engine.snapshot(), config_fingerprint(cfg), cfg.run.keep_checkpoints)
