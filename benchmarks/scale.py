"""Scale: many small synthetic clients on the Ray engine (2 workers); seconds per round and peak memory.

Memory is sampled every --interval seconds in a thread: the RSS (and PSS, which splits
shared pages such as the object store among the processes mapping them) of this driver and
every process it started (Ray's gcs_server, raylet, agents, workers and actors), summed.
Figures only; nothing is asserted. Usage:

    RAY_AUTH_MODE=disabled python benchmarks/scale.py [--clients 10000] [--per-round 1000] [--rounds 3]
        [--max-samples 20] [--model logreg|mlp] [--algorithm fedavg|scaffold]

A stateful algorithm also reports its per-client state on disk (results folder's client_state/):
    RAY_AUTH_MODE=disabled python benchmarks/scale.py --algorithm scaffold --per-round 100 --rounds 30 --model mlp
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import threading
import types
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads  # noqa: E402,F401  (sets RAY_AUTH_MODE, finds the package)
from engine_overhead import timed_run  # noqa: E402

from fedref_ray.config import load_config  # noqa: E402


def _import_psutil() -> types.ModuleType:
    """psutil, or the copy Ray vendors (importing ray puts ray/thirdparty_files on sys.path)."""
    try:
        return importlib.import_module("psutil")
    except ImportError:
        importlib.import_module("ray")
        return importlib.import_module("psutil")


psutil = _import_psutil()

MIB = 1024 * 1024
# Longest first: the first substring of a process's command line that matches names its group.
GROUPS = (
    ("ray::RayClientWorker", "client-worker actors"),
    ("ray::Server", "server actor"),
    ("ray::SharedInputs", "shared-inputs actor"),
    ("ray::IDLE", "idle Ray workers"),
    ("ray::", "other ray:: processes"),
    ("raylet", "raylet (+ object store)"),
    ("gcs_server", "gcs_server"),
    ("dashboard", "dashboard / agent"),
    ("runtime_env", "runtime-env agent"),
    ("log_monitor", "log monitor"),
    ("monitor.py", "autoscaler monitor"),
    ("default_worker.py", "starting Ray workers"),
)


def group_of(proc: psutil.Process, driver: int) -> str:
    if proc.pid == driver:
        return "driver (this process)"
    try:
        cmd = " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        return "other"
    return next((label for key, label in GROUPS if key in cmd), "other")


class MemorySampler(threading.Thread):
    """Polls this process and all its descendants; keeps the peak of the RSS sum (and of the PSS sum)."""

    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.stop = threading.Event()
        self.driver = os.getpid()
        self.peak_rss = self.peak_pss = 0
        self.peak_groups: dict[str, tuple[int, int]] = {}
        self.peak_procs = 0
        self.samples = 0
        self.pss_ok = True

    def sample(self) -> None:
        me = psutil.Process(self.driver)
        procs = [me, *me.children(recursive=True)]
        groups: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        rss_total = pss_total = 0
        for p in procs:
            try:
                rss = p.memory_info().rss
                pss = 0
                if self.pss_ok:
                    try:
                        pss = p.memory_full_info().pss
                    except (psutil.AccessDenied, AttributeError):
                        self.pss_ok = False
            except psutil.Error:
                continue
            g = groups[group_of(p, self.driver)]
            g[0] += rss
            g[1] += pss
            g[2] += 1
            rss_total += rss
            pss_total += pss
        self.samples += 1
        if rss_total > self.peak_rss:
            self.peak_rss, self.peak_procs = rss_total, len(procs)
            self.peak_groups = {k: (v[0], v[1], v[2]) for k, v in groups.items()}
        self.peak_pss = max(self.peak_pss, pss_total)

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10_000, help="synthetic users = clients")
    parser.add_argument("--per-round", type=int, default=1_000, help="clients sampled per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-samples", type=int, default=20, help="data.synthetic_max_samples")
    parser.add_argument("--model", choices=("logreg", "mlp"), default="logreg")
    parser.add_argument("--algorithm", default="fedavg", help="any algorithm.name, e.g. scaffold (client state)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.2, help="memory sampling period, seconds")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="fedref-scale-") as tmp:
        cfg = load_config(
            None,
            [
                "data.name=synthetic",
                f"data.synthetic_users={args.clients}",
                f"data.synthetic_max_samples={args.max_samples}",
                "partition.name=natural",
                "partition.num_clients=null",
                f"model.name={args.model}",
                f"algorithm.name={args.algorithm}",
                f"run.clients_per_round={args.per_round}",
                f"run.rounds={args.rounds}",
                "engine.name=ray",
                f"engine.num_workers={args.workers}",
                f"run.results_dir={tmp}/run",
            ],
        )
        sampler = MemorySampler(args.interval)
        sampler.start()
        try:
            t = timed_run(cfg, f"{args.clients}/{args.per_round}", "ray")
        finally:
            sampler.stop.set()
            sampler.join()
        state_dir = Path(tmp) / "run" / "client_state"
        state_files = list(state_dir.glob("*.f32")) if state_dir.is_dir() else []
        state_mib = sum(f.stat().st_size for f in state_files) / MIB
    steady = t.steady
    print(
        f"\n== scale: {args.clients:,} synthetic clients (<= {args.max_samples} samples each, natural partition), "
        f"{args.per_round:,} per round, {args.rounds} rounds, {args.model}, {args.algorithm}, "
        f"Ray engine {args.workers} workers"
    )
    print(
        f"   start-up (data, engine, actors) {t.startup_s:.2f} s; round 1 {t.round_s[0]:.3f} s; "
        f"steady {statistics.fmean(steady):.3f} s/round (median {statistics.median(steady):.3f}, "
        "rounds 2..N, driver side); "
        f"server-measured {statistics.fmean(t.server_round_s[1:] or t.server_round_s):.3f} s/round"
    )
    print(
        f"   per sampled client: {statistics.fmean(steady) / args.per_round * 1000:.2f} ms; "
        f"samples per round {t.samples_per_round}; end-to-end {t.end_to_end_s:.2f} s; "
        f"final acc {t.final_accuracy:.4f}"
    )
    print(
        f"   peak memory (sampled every {args.interval} s, {sampler.samples} samples): "
        f"RSS summed {sampler.peak_rss / MIB:,.0f} MiB"
        f" over {sampler.peak_procs} processes; PSS summed {sampler.peak_pss / MIB:,.0f} MiB"
        f"{'' if sampler.pss_ok else ' (PSS unavailable)'}"
    )
    if state_files:
        print(f"   client state on disk at the end: {state_mib:,.1f} MiB in {len(state_files)} round files")
    print("   at the RSS peak, by process group (RSS MiB / PSS MiB / count):")
    for label, (rss, pss, n) in sorted(sampler.peak_groups.items(), key=lambda kv: -kv[1][0]):
        print(f"     {label:<28}{rss / MIB:>9,.0f}{pss / MIB:>9,.0f}{n:>5}")
    print(
        "   RSS counts shared pages (object store, shared libraries) once per process that maps them; PSS splits them."
    )
    print(
        f"   load average before -> after: {'/'.join(f'{x:.2f}' for x in load_before)} -> "
        f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
