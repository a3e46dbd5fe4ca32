"""Scaling study: seconds per round and peak memory against total clients, clients per round,
workers and model size, on the Ray engine. Uses benchmarks/scale.py's machinery (its memory
sampler, and benchmarks/engine_overhead.py's `timed_run`), one subprocess per configuration so
that every configuration gets a fresh Ray.

    RAY_AUTH_MODE=disabled python experiments/scaling/run_study.py [--axis grid|models|all] [--rounds 3]
        [--only-total 100,1000] [--workers 1,2] [--out experiments/scaling/results/scaling.parquet]

Incremental: configurations already in the parquet are skipped (unless --redo, which runs them
again and replaces their rows), and the parquet is rewritten after every configuration, so the
study can be run in pieces (or interrupted).

Axes:
- grid: synthetic data (one client per synthetic user, <= 20 samples each, natural partition),
  logreg, total clients 100 / 1,000 / 10,000 / 100,000 x per round 10 / 100 / 1,000 (per round
  <= total) x 1 and 2 workers.
- models: mnist5k (Dirichlet 0.5), 1,000 clients, 100 per round, logreg / mlp / femnist_cnn / resnet18, 2 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BENCH = REPO / "benchmarks"
DEFAULT_OUT = HERE / "results" / "scaling.parquet"

KEY = ("dataset", "total_clients", "per_round", "workers", "model")
COLUMNS = (
    *KEY,
    "rounds",
    "steady_s_per_round",
    "steady_median_s",
    "round1_s",
    "server_s_per_round",
    "startup_s",
    "end_to_end_s",
    "peak_rss_mib",
    "peak_pss_mib",
    "samples_per_round",
    "client_busy_s_per_round",
    "model_bytes",
    "final_accuracy",
    "load_avg",
    "load_before",
    "when_utc",
)

TOTALS = (100, 1_000, 10_000, 100_000)
PER_ROUND = (10, 100, 1_000)
MODELS = ("logreg", "mlp", "femnist_cnn", "resnet18")


def grid_configs(workers: list[int], totals: list[int]) -> list[dict]:
    out = []
    for w in workers:
        for total in totals:
            for k in PER_ROUND:
                if k <= total:
                    c = {"dataset": "synthetic", "total_clients": total, "per_round": k, "workers": w}
                    out.append({**c, "model": "logreg"})
    return out


def model_configs(workers: list[int]) -> list[dict]:
    return [
        {"dataset": "mnist5k", "total_clients": 1_000, "per_round": 100, "workers": w, "model": m}
        for w in workers
        for m in MODELS
    ]


def overrides(c: dict, rounds: int, results_dir: str, max_samples: int) -> list[str]:
    if c["dataset"] == "synthetic":
        data = [
            "data.name=synthetic",
            f"data.synthetic_users={c['total_clients']}",
            f"data.synthetic_max_samples={max_samples}",
            "partition.name=natural",
            "partition.num_clients=null",
        ]
    else:  # mnist5k, as workload W2 of benchmarks/workloads.py
        sys.path.insert(0, str(BENCH))
        import workloads

        data = [o for o in workloads.COMMON if not o.startswith("model.")]
        data.append(f"partition.num_clients={c['total_clients']}")
    return [
        *data,
        f"model.name={c['model']}",
        "algorithm.name=fedavg",
        f"run.clients_per_round={c['per_round']}",
        f"run.rounds={rounds}",
        "engine.name=ray",
        f"engine.num_workers={c['workers']}",
        f"run.results_dir={results_dir}",
    ]


def run_one(c: dict, rounds: int, max_samples: int, interval: float) -> dict:
    """One configuration in this process (a fresh interpreter): the row for the parquet."""
    sys.path.insert(0, str(BENCH))
    import pandas as pd
    import scale  # benchmarks/scale.py: MemorySampler (RSS/PSS of driver + every Ray process)

    from fedref_ray.config import load_config

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="fedref-scaling-") as tmp:
        cfg = load_config(None, overrides(c, rounds, f"{tmp}/run", max_samples))
        sampler = scale.MemorySampler(interval)
        sampler.start()
        try:
            t = scale.timed_run(cfg, f"{c['total_clients']}/{c['per_round']}", "ray")
        finally:
            sampler.stop.set()
            sampler.join()
        rounds_df = pd.read_parquet(f"{tmp}/run/rounds.parquet")
        clients_df = pd.read_parquet(f"{tmp}/run/clients.parquet")
    # Model size: bytes sent down in round 1 / clients sampled in round 1.
    r1 = rounds_df.sort_values("round").iloc[0]
    model_bytes = int(r1["bytes_down"]) // max(int(r1["clients_sampled"]), 1)
    # Client training seconds per steady round, summed over clients (all workers together).
    rcol = "round" if "round" in clients_df.columns else None
    if rcol is not None:
        steady_clients = clients_df[clients_df[rcol] >= 2]
        n_steady = max(steady_clients[rcol].nunique(), 1)
        busy = float(steady_clients["seconds"].sum()) / n_steady
    else:
        busy = float("nan")
    steady = t.steady
    return {
        **c,
        "rounds": rounds,
        "steady_s_per_round": statistics.fmean(steady),
        "steady_median_s": statistics.median(steady),
        "round1_s": t.round_s[0],
        "server_s_per_round": statistics.fmean(t.server_round_s[1:] or t.server_round_s),
        "startup_s": t.startup_s,
        "end_to_end_s": t.end_to_end_s,
        "peak_rss_mib": sampler.peak_rss / scale.MIB,
        "peak_pss_mib": sampler.peak_pss / scale.MIB if sampler.pss_ok else float("nan"),
        "samples_per_round": statistics.fmean(t.samples_per_round[1:] or t.samples_per_round),
        "client_busy_s_per_round": busy,
        "model_bytes": model_bytes,
        "final_accuracy": t.final_accuracy,
        "load_avg": os.getloadavg()[0],
        "load_before": load_before[0],
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def key_of(row: dict) -> tuple:
    return tuple(row[k] for k in KEY)


def load_done(out: Path):
    import pandas as pd

    if out.exists():
        return pd.read_parquet(out)
    return pd.DataFrame(columns=list(COLUMNS))


def save(df, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    df = df.sort_values(list(KEY)).reset_index(drop=True)
    tmp = out.with_suffix(".parquet.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--axis", choices=("grid", "models", "all"), default="all")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per run; steady = rounds 2..N")
    parser.add_argument("--max-samples", type=int, default=20, help="data.synthetic_max_samples (grid)")
    parser.add_argument("--interval", type=float, default=0.2, help="memory sampling period, seconds")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--only-total", default=None, help="comma-separated total-client counts (grid)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per configuration")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--redo", action="store_true", help="run selected configurations again, replacing their rows")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # JSON config: run it, print a JSON row
    args = parser.parse_args()

    if args.one is not None:
        row = run_one(json.loads(args.one), args.rounds, args.max_samples, args.interval)
        print("SCALING_ROW " + json.dumps(row), flush=True)
        return

    import pandas as pd

    workers = [int(x) for x in args.workers.split(",")]
    totals = [int(x) for x in args.only_total.split(",")] if args.only_total else list(TOTALS)
    todo = []
    if args.axis in ("grid", "all"):
        todo += grid_configs(workers, totals)
    if args.axis in ("models", "all"):
        todo += model_configs([w for w in workers if w == 2] or workers)
    df = load_done(args.out)
    done = {tuple(r) for r in df[list(KEY)].itertuples(index=False, name=None)}
    for c in todo:
        if key_of(c) in done and not args.redo:
            print(f"skip (done) {c}", flush=True)
            continue
        print(f"run {c} ...", flush=True)
        cmd = [
            sys.executable, str(Path(__file__).resolve()), "--one", json.dumps(c),
            "--rounds", str(args.rounds), "--max-samples", str(args.max_samples), "--interval", str(args.interval),
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=REPO)
        except subprocess.TimeoutExpired:
            print(f"   TIMEOUT after {args.timeout:.0f} s: {c}", flush=True)
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SCALING_ROW ")]
        if proc.returncode != 0 or not lines:
            print(f"   FAILED (rc {proc.returncode}): {c}\n{proc.stderr[-3000:]}", flush=True)
            continue
        row = json.loads(lines[-1][len("SCALING_ROW ") :])
        if len(df):  # --redo: the new row replaces the old one
            df = df[[key_of(r) != key_of(row) for r in df.to_dict("records")]]
        df = pd.concat([df, pd.DataFrame([row])], ignore_index=True) if len(df) else pd.DataFrame([row])
        save(df[[col for col in COLUMNS if col in df.columns]], args.out)
        done.add(key_of(row))
        print(
            f"   steady {row['steady_s_per_round']:.3f} s/round, start-up {row['startup_s']:.1f} s, "
            f"peak RSS {row['peak_rss_mib']:,.0f} MiB / PSS {row['peak_pss_mib']:,.0f} MiB, load {row['load_avg']:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
