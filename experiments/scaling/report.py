"""Scaling study report: tables, plots and a cluster projection from results/scaling.parquet.

    python experiments/scaling/report.py [--parquet experiments/scaling/results/scaling.parquet]
        [--out experiments/scaling/results] [--bandwidth-gbit 10]

Writes `scaling.md`, `s_per_round.png` and `peak_pss.png` (and `models.png` when the
model-size axis has rows) next to the parquet. The output depends only on the parquet and
the options (no clock, sorted rows, fixed float formats, PNGs without timestamps), so running
it twice gives the same files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DEFAULT_PARQUET = HERE / "results" / "scaling.parquet"

NODES = (1, 2, 4, 8, 16, 32, 64)
WORKERS_PER_NODE = (2, 16)
PROJECT_PER_ROUND = (1_000, 10_000, 100_000)


def _fmt(x: float, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    return f"{x:,.{nd}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["dataset", "model", "workers", "total_clients", "per_round"]).reset_index(drop=True)


def grid_rows(df: pd.DataFrame) -> pd.DataFrame:
    return _sorted(df[(df["dataset"] == "synthetic") & (df["model"] == "logreg")])


def model_rows(df: pd.DataFrame) -> pd.DataFrame:
    return _sorted(df[df["dataset"] != "synthetic"])


def fixed_cost(row: pd.Series) -> float:
    """Per-round cost that does not shrink with more workers: the round minus the clients' training
    time divided over the workers (server merge, evaluation, sampling, dispatch), as measured."""
    return max(float(row["steady_s_per_round"]) - float(row["client_busy_s_per_round"]) / int(row["workers"]), 0.0)


def throughput_table(grid: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
    kmax = int(grid["per_round"].max())
    top = grid[grid["per_round"] == kmax].copy()
    top["clients_per_s_per_worker"] = top["per_round"] / top["steady_s_per_round"] / top["workers"]
    top["samples_per_s_per_worker"] = top["samples_per_round"] / top["steady_s_per_round"] / top["workers"]
    top["train_clients_per_s"] = top["per_round"] / top["client_busy_s_per_round"]
    top["fixed_s"] = top.apply(fixed_cost, axis=1)
    rows = [
        [
            f"{int(r.total_clients):,}",
            f"{int(r.per_round):,}",
            str(int(r.workers)),
            _fmt(r.steady_s_per_round),
            _fmt(r.clients_per_s_per_worker, 0),
            _fmt(r.samples_per_s_per_worker, 0),
            _fmt(r.train_clients_per_s, 0),
            _fmt(r.fixed_s),
        ]
        for r in top.itertuples()
    ]
    lines = _table(
        [
            "total clients",
            "per round",
            "workers",
            "steady s/round",
            "clients/s per worker (round)",
            "samples/s per worker (round)",
            "clients/s per worker (training only)",
            "fixed s/round",
        ],
        rows,
    )
    return lines, top


def projection(grid: pd.DataFrame, models: pd.DataFrame, bandwidth_gbit: float) -> list[str]:
    lines = ["## Projection to a cluster of N nodes x W workers", ""]
    if grid.empty:
        return [*lines, "No synthetic logreg rows: nothing to project from.", ""]
    tp_lines, top = throughput_table(grid)
    # Reference configuration: largest per-round setting, most workers, largest total.
    ref = top.sort_values(["workers", "total_clients"]).iloc[-1]
    w_ref, n_ref, k_ref = int(ref["workers"]), int(ref["total_clients"]), int(ref["per_round"])
    per_client_s = float(ref["client_busy_s_per_round"]) / k_ref
    # Fixed (non-parallel) cost vs per round, fitted on the rows of the reference total and workers.
    same = grid[(grid["total_clients"] == n_ref) & (grid["workers"] == w_ref)].sort_values("per_round")
    ks = same["per_round"].to_numpy(dtype=float)
    fixed = np.array([fixed_cost(r) for _, r in same.iterrows()])
    if len(ks) >= 2:
        slope, intercept = np.polyfit(ks, fixed, 1)
        slope = max(float(slope), 0.0)
        intercept = max(float(intercept), 0.0)
    else:
        slope, intercept = 0.0, float(fixed[0])
    model_bytes = int(ref["model_bytes"])
    bw = bandwidth_gbit * 1e9 / 8  # bytes/s

    def project(nodes: int, w: int, k: int, mbytes: int, pcs: float) -> float:
        fixed_k = intercept + slope * k
        parallel = k * pcs / (nodes * w)
        net = 0.0 if nodes == 1 else (nodes * mbytes + nodes * w * mbytes) / bw
        return fixed_k + parallel + net

    lines += [
        "Per-worker throughput at the largest per-round setting "
        f"({k_ref:,} clients per round), synthetic data, logreg:",
        "",
        *tp_lines,
        "",
        '"round" throughput divides the whole steady round over the workers; "training only" uses the '
        "clients' own training seconds (clients.parquet), without the server, evaluation and dispatch. "
        '"fixed s/round" = steady s/round - training seconds / workers.',
        "",
        f"Reference for the projection: {n_ref:,} total clients, {k_ref:,} per round, "
        f"{w_ref} worker{'s' if w_ref > 1 else ''} "
        f"(steady {_fmt(float(ref['steady_s_per_round']))} s/round): training "
        f"{_fmt(per_client_s * 1000, 3)} ms per client (one worker), fixed cost per round "
        f"{_fmt(intercept, 4)} s + {_fmt(slope * 1e6, 3)} us x clients per round "
        f"(least-squares line through the fixed cost at per round {', '.join(f'{int(k):,}' for k in ks)}), "
        f"model {model_bytes:,} bytes.",
        "",
        "Model: `s/round(N, W, K) = fixed(K) + K x t_client / (N x W) + [N > 1] x (N + N x W) x model_bytes / B`",
        "",
        "Assumptions:",
        "",
        "- Training is linear in workers: N x W workers train N x W times as many clients per second as one, "
        "each at the measured per-client training time (no contention; here 2 workers share 2 cores with "
        "the driver and the server, so the measured per-worker figure is a lower bound on a dedicated core).",
        "- The server's part (merging the workers' partial sums, the test-set evaluation, client sampling and "
        "dispatch) is measured on this machine and does not shrink with more nodes; it grows with clients per "
        "round along the fitted line (extrapolated beyond the largest measured per-round setting).",
        "- Object-store broadcast: each round the head node sends the global model once to each other node "
        "(Ray's object store shares it among a node's workers) and receives one partial sum per worker "
        "(workers reduce their clients' updates before returning): (N + N x W) x model_bytes over a "
        f"B = {bandwidth_gbit:g} Gbit/s link at the head, serialised, latency ignored.",
        "- N = 1 is one machine: no network cost (the object store is shared memory), as measured here.",
        "- Data stays on the nodes (generated or loaded once at start-up); start-up is not included; "
        "client-level stragglers, failures and scheduling jitter are ignored.",
        "",
    ]
    for w in WORKERS_PER_NODE:
        header = ["nodes N", *[f"K={k:,}" for k in PROJECT_PER_ROUND]]
        rows = [
            [str(n), *[_fmt(project(n, w, k, model_bytes, per_client_s)) for k in PROJECT_PER_ROUND]] for n in NODES
        ]
        lines += [f"Projected seconds per round, W = {w} workers per node, logreg (synthetic):", ""]
        lines += _table(header, rows)
        lines.append("")
    if not models.empty:
        lines += [
            "Model size: the same projection per model, from the model-size axis (mnist5k, "
            "its own measured per-client training time and fixed cost at its measured per-round setting; "
            "W = 16 workers per node):",
            "",
        ]
        header = ["model", "model bytes", "per round K", "measured s/round", *[f"N={n}" for n in NODES]]
        rows = []
        for r in models.sort_values(["workers", "model_bytes", "model"]).itertuples():
            k = int(r.per_round)
            pcs = float(r.client_busy_s_per_round) / k
            fx = fixed_cost(pd.Series(r._asdict()))
            mb = int(r.model_bytes)

            def proj(n: int, fx=fx, k=k, pcs=pcs, mb=mb) -> float:
                w = 16
                return fx + k * pcs / (n * w) + (0.0 if n == 1 else (n * mb + n * w * mb) / bw)

            label = f"{r.model} ({int(r.workers)} worker{'s' if int(r.workers) > 1 else ''} measured)"
            rows.append([label, f"{mb:,}", f"{k:,}", _fmt(r.steady_s_per_round)] + [_fmt(proj(n)) for n in NODES])
        lines += _table(header, rows)
        lines += [
            "",
            "For a large model the network term dominates beyond a few nodes: one partial sum per worker "
            "comes back to the head each round, (N x W) x model_bytes; a per-node reduce before the upload "
            "would cut that to N x model_bytes.",
            "",
        ]
    return lines


def plots(grid: pd.DataFrame, models: pd.DataFrame, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta = {"Software": None}
    names = []
    if not grid.empty:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for (total, w), g in grid.groupby(["total_clients", "workers"], sort=True):
            g = g.sort_values("per_round")
            ax.plot(
                g["per_round"], g["steady_s_per_round"], marker="o", linestyle="-" if w == 2 else "--",
                label=f"{int(total):,} clients, {int(w)} worker{'s' if w > 1 else ''}",
            )  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("clients per round")
        ax.set_ylabel("steady seconds per round")
        ax.set_title("Seconds per round (synthetic, logreg)")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "s_per_round.png", metadata=meta)
        plt.close(fig)
        names.append("s_per_round.png")

        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for (k, w), g in grid.groupby(["per_round", "workers"], sort=True):
            g = g.sort_values("total_clients")
            ax.plot(
                g["total_clients"], g["peak_pss_mib"] / 1024, marker="o", linestyle="-" if w == 2 else "--",
                label=f"{int(k):,} per round, {int(w)} worker{'s' if w > 1 else ''}",
            )  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("total clients")
        ax.set_ylabel("peak PSS, all Ray processes + driver (GiB)")
        ax.set_title("Peak memory (synthetic, logreg)")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "peak_pss.png", metadata=meta)
        plt.close(fig)
        names.append("peak_pss.png")
    if not models.empty:
        m = models.sort_values(["workers", "model_bytes", "model"])
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        labels = [f"{r.model}\n{int(r.workers)}w" for r in m.itertuples()]
        ax.bar(range(len(m)), m["steady_s_per_round"])
        ax.set_xticks(range(len(m)), labels)
        ax.set_ylabel("steady seconds per round")
        ax.set_title("Model size (mnist5k, 1,000 clients, 100 per round)")
        fig.tight_layout()
        fig.savefig(out / "models.png", metadata=meta)
        plt.close(fig)
        names.append("models.png")
    return names


def render(df: pd.DataFrame, bandwidth_gbit: float = 10.0, pngs: list[str] | None = None) -> str:
    grid, models = grid_rows(df), model_rows(df)
    lines = [
        "# Scaling study",
        "",
        "Generated by `experiments/scaling/report.py` from `results/scaling.parquet` "
        "(written by `run_study.py`). Steady = mean of rounds 2..N (driver-side seconds, test-set "
        "evaluation included); peak memory is the peak of the sum over the driver and every process "
        "it started (RSS counts shared pages once per process that maps them, PSS splits them), "
        "sampled every 0.2 s. `load` is the 1-minute load average at the end of the run: the timings "
        "come from a shared 2-core machine, so compare rows made under similar load.",
        "",
    ]
    if pngs:
        lines += [" ".join(f"![{p}]({p})" for p in pngs), ""]
    lines += ["## Clients: synthetic data, logreg", ""]
    if grid.empty:
        lines += ["No rows.", ""]
    else:
        rows = [
            [
                f"{int(r.total_clients):,}",
                f"{int(r.per_round):,}",
                str(int(r.workers)),
                str(int(r.rounds)),
                _fmt(r.steady_s_per_round),
                _fmt(r.steady_s_per_round / r.per_round * 1000, 2),
                _fmt(r.startup_s, 1),
                _fmt(r.peak_rss_mib, 0),
                _fmt(r.peak_pss_mib, 0),
                _fmt(r.load_avg, 2),
            ]
            for r in grid.sort_values(["workers", "total_clients", "per_round"]).itertuples()
        ]
        lines += _table(
            [
                "total clients",
                "per round",
                "workers",
                "rounds",
                "steady s/round",
                "ms per client",
                "start-up s",
                "peak RSS MiB",
                "peak PSS MiB",
                "load",
            ],
            rows,
        )
        lines.append("")
        # Speed-up of 2 workers over 1 where both exist.
        piv = grid.pivot_table(index=["total_clients", "per_round"], columns="workers", values="steady_s_per_round")
        if 1 in piv.columns and 2 in piv.columns:
            piv = piv.dropna(subset=[1, 2]).sort_index()
            rows = [
                [f"{int(t):,}", f"{int(k):,}", _fmt(r[1]), _fmt(r[2]), f"{r[1] / r[2]:.2f}x"]
                for (t, k), r in piv.iterrows()
            ]
            lines += ["Two workers against one (steady s/round):", ""]
            lines += _table(["total clients", "per round", "1 worker", "2 workers", "speed-up"], rows)
            lines.append("")
    lines += ["## Model size: mnist5k, 1,000 clients, 100 per round", ""]
    if models.empty:
        lines += ["Not run.", ""]
    else:
        rows = [
            [
                str(r.model),
                f"{int(r.model_bytes):,}",
                str(int(r.workers)),
                _fmt(r.steady_s_per_round),
                _fmt(r.startup_s, 1),
                _fmt(r.peak_rss_mib, 0),
                _fmt(r.peak_pss_mib, 0),
                _fmt(r.final_accuracy, 4),
                _fmt(r.load_avg, 2),
            ]
            for r in models.sort_values(["workers", "model_bytes", "model"]).itertuples()
        ]
        lines += _table(
            [
                "model",
                "model bytes",
                "workers",
                "steady s/round",
                "start-up s",
                "peak RSS MiB",
                "peak PSS MiB",
                "accuracy (3 rounds)",
                "load",
            ],
            rows,
        )
        lines.append("")
    lines += projection(grid, models, bandwidth_gbit)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parquet", type=Path, default=DEFAULT_PARQUET)
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for scaling.md and PNGs (default: the parquet's)"
    )
    parser.add_argument("--bandwidth-gbit", type=float, default=10.0, help="head-node link for the projection")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    out = args.out or args.parquet.parent
    out.mkdir(parents=True, exist_ok=True)
    df = pd.read_parquet(args.parquet)
    pngs = [] if args.no_plots else plots(grid_rows(df), model_rows(df), out)
    md = render(df, args.bandwidth_gbit, pngs)
    path = out / "scaling.md"
    path.write_text(md)
    print(f"wrote {path}" + (f" and {', '.join(pngs)}" if pngs else ""))
    return path


if __name__ == "__main__":
    main()
