"""Engine overhead: the same workload as a bare PyTorch loop, the in-process engine and the Ray engine.

Prints seconds per round (steady state: every round after the first), start-up, the ratio
of each engine to the bare loop, and the engines' end-to-end times. Figures only; nothing
is asserted. Usage:

    RAY_AUTH_MODE=disabled python benchmarks/engine_overhead.py [--workload W1|W2|both] [--rounds N]
        [--engines bare,local,ray] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from workloads import build, workload_names  # noqa: E402  (sets RAY_AUTH_MODE, finds the package)

from fedref_ray.config import ExperimentConfig  # noqa: E402
from fedref_ray.data.prepare import prepare_data  # noqa: E402
from fedref_ray.engine import initial_params  # noqa: E402
from fedref_ray.models import build_model  # noqa: E402
from fedref_ray.seeding import derive_seed, sample_clients  # noqa: E402

ENGINES = ("bare", "local", "ray")
THREADS_SET = False
LABELS = {"bare": "bare torch loop", "local": "local engine", "ray": "ray engine (2 workers)"}


@dataclass
class Timing:
    """One system's timings on one workload (seconds)."""

    workload: str
    system: str
    startup_s: float
    round_s: list[float]  # every round, driver-side, round 1 first
    server_round_s: list[float] = field(default_factory=list)  # the engine's own RoundRecord.wall_seconds
    end_to_end_s: float | None = None
    final_accuracy: float = float("nan")
    samples_per_round: list[int] = field(default_factory=list)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def steady(self) -> list[float]:
        """Rounds after the first (the first pays lazy start-up in workers and allocators)."""
        return self.round_s[1:] if len(self.round_s) > 1 else self.round_s


def bare_loop(name: str, cfg: ExperimentConfig) -> Timing:
    """FedAvg written plainly in PyTorch: same model, data, partition, sampled clients, shuffles and evaluation."""
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    arrays, data = prepare_data(cfg)  # same images and same client index lists as the engines
    start = initial_params(cfg, arrays.input_shape, arrays.num_classes)
    scale = 255.0 if arrays.x_train.dtype == np.uint8 else 1.0
    x_train = torch.from_numpy(arrays.x_train).float() / scale  # converted once, not per batch
    y_train = torch.from_numpy(arrays.y_train)
    x_test = torch.from_numpy(arrays.x_test).float() / scale
    y_test = torch.from_numpy(arrays.y_test)
    model = build_model(cfg.model.name, arrays.input_shape, arrays.num_classes, cfg.model.hidden)
    global_state = {k: torch.from_numpy(v.copy()) for k, v in start.items()}
    tr, seed = cfg.training, cfg.run.seed
    startup = time.perf_counter() - t0

    rounds, samples, accuracy = [], [], float("nan")
    for r in range(1, cfg.run.rounds + 1):
        began = time.perf_counter()
        sampled = sample_clients(seed, r, data.num_clients, cfg.run.clients_per_round)
        acc = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in global_state.items()}
        total = 0
        for cid in sampled.tolist():
            idx = data.client_indices(cid)
            model.load_state_dict(global_state)
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=tr.lr)
            rng = np.random.default_rng(derive_seed(seed, "train", r, cid))
            for _ in range(tr.local_epochs):
                order = rng.permutation(idx)
                for b in range(0, len(order), tr.batch_size):
                    batch = torch.from_numpy(np.sort(order[b : b + tr.batch_size]))
                    opt.zero_grad(set_to_none=True)
                    F.cross_entropy(model(x_train[batch]), y_train[batch]).backward()
                    opt.step()
            with torch.no_grad():
                for k, v in model.state_dict().items():
                    acc[k] += len(idx) * v.double()
            total += len(idx)
        global_state = {k: (v / total).float() for k, v in acc.items()}
        model.load_state_dict(global_state)
        model.eval()
        correct, loss_sum = 0, 0.0
        with torch.no_grad():
            for b in range(0, len(y_test), tr.eval_batch_size):
                logits = model(x_test[b : b + tr.eval_batch_size])
                yb = y_test[b : b + tr.eval_batch_size]
                loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
                correct += int((logits.argmax(1) == yb).sum())
        accuracy = correct / len(y_test)
        rounds.append(time.perf_counter() - began)
        samples.append(total)
    return Timing(
        name,
        "bare",
        startup,
        rounds,
        final_accuracy=accuracy,
        samples_per_round=samples,
        load_before=load_before,
        load_after=os.getloadavg(),
    )


def engine_run(name: str, cfg: ExperimentConfig, engine: str) -> Timing:
    """Workload `name` on engine `engine` (2 workers for Ray), results written to a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="fedref-bench-") as tmp:
        cfg = build(
            name, f"engine.name={engine}", "engine.num_workers=2", f"run.results_dir={tmp}/run", rounds=cfg.run.rounds
        )
        return timed_run(cfg, name, engine)


def timed_run(cfg: ExperimentConfig, workload: str, system: str) -> Timing:
    """A real `run_experiment`, timed from the driver (cfg.run.results_dir must be set).

    Start-up = time to the first round's record minus that round's own duration (as the
    server measured it): data, initial model, results folder, engine and actor start.
    """
    from fedref_ray.simulation import run_experiment

    load_before = os.getloadavg()
    stamps: list[float] = []
    records = []

    def on_round(record: object) -> None:
        stamps.append(time.perf_counter())
        records.append(record)

    t0 = time.perf_counter()
    result = run_experiment(cfg, quiet=True, on_round=on_round)
    e2e = time.perf_counter() - t0
    server = [float(r.wall_seconds) for r in records]
    startup = stamps[0] - t0 - server[0]
    driver = [server[0]] + [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    samples = [int(r.samples) for r in records]
    per_round = [samples[0]] + [b - a for a, b in zip(samples, samples[1:], strict=False)]
    return Timing(
        workload,
        system,
        startup,
        driver,
        server_round_s=server,
        end_to_end_s=e2e,
        final_accuracy=float(result.summary["final_accuracy"]),
        samples_per_round=per_round,
        load_before=load_before,
        load_after=os.getloadavg(),
    )


def describe(name: str, cfg: ExperimentConfig) -> str:
    return (
        f"{name}: {cfg.data.name}, {cfg.partition.num_clients} clients "
        f"({cfg.partition.name} alpha={cfg.partition.alpha}), "
        f"{cfg.run.clients_per_round} per round, {cfg.run.rounds} rounds, {cfg.model.name}, "
        f"{cfg.training.local_epochs} epoch, batch {cfg.training.batch_size}, lr {cfg.training.lr}, "
        f"{cfg.algorithm.name}"
    )


def fmt_load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.2f}" for x in load)


def print_table(name: str, cfg: ExperimentConfig, timings: list[Timing]) -> None:
    print(f"\n== {describe(name, cfg)}")
    which = "set by --threads" if THREADS_SET else "torch default"
    print(
        f"   torch threads in this process: {torch.get_num_threads()} ({which}; bare loop and local engine use it);"
        f" Ray workers: engine.torch_threads=null -> 1 thread each, 2 workers; {os.cpu_count()} CPUs"
    )
    bare = next((t for t in timings if t.system == "bare"), None)
    head = f"   {'system':<24}{'start-up s':>11}{'round 1 s':>11}{'steady s/round':>16}{'median':>9}{'vs bare':>9}"
    print(head + f"{'server s/rd':>12}{'end-to-end s':>14}{'final acc':>10}  load avg before -> after")
    for t in timings:
        steady = statistics.fmean(t.steady)
        ratio = f"{steady / statistics.fmean(bare.steady):.2f}x" if bare is not None else "-"
        server = f"{statistics.fmean(t.server_round_s[1:] or t.server_round_s):.3f}" if t.server_round_s else "-"
        e2e = f"{t.end_to_end_s:.2f}" if t.end_to_end_s is not None else "-"
        print(
            f"   {LABELS[t.system]:<24}{t.startup_s:>11.2f}{t.round_s[0]:>11.3f}{steady:>16.3f}"
            f"{statistics.median(t.steady):>9.3f}{ratio:>9}{server:>12}{e2e:>14}{t.final_accuracy:>10.4f}"
            f"  {fmt_load(t.load_before)} -> {fmt_load(t.load_after)}"
        )
    if timings:
        print(f"   samples trained per round (same sampled clients in every system): {timings[0].samples_per_round}")
    print(
        "   steady = mean driver-side seconds of rounds 2..N; server s/rd = the engine's own RoundRecord.wall_seconds"
        " (rounds 2..N);\n   end-to-end = run_experiment() total, start-up included"
        " (interpreter and imports excluded)"
    )


def main() -> None:
    global THREADS_SET
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("W1", "W2", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=None, help="override run.rounds (at least 2 for a steady state)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of bare,local,ray")
    parser.add_argument("--json", action="store_true", help="print one JSON line per run instead of tables")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for the bare loop and local engine (default: torch's default)",
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        THREADS_SET = True
    engines = [e for e in args.engines.split(",") if e]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        parser.error(f"--engines: unknown {unknown}; allowed: {', '.join(ENGINES)}")
    for name in workload_names(args.workload):
        cfg = build(name, rounds=args.rounds)
        timings = []
        for engine in engines:
            t = bare_loop(name, cfg) if engine == "bare" else engine_run(name, cfg, engine)
            timings.append(t)
            if args.json:
                print(json.dumps({**asdict(t), "steady": t.steady}), flush=True)
            else:
                done = f"   [{name} {engine} done: steady {statistics.fmean(t.steady):.3f} s/round]"
                print(done, file=sys.stderr, flush=True)
        if not args.json:
            print_table(name, cfg, timings)


if __name__ == "__main__":
    main()
