"""The report of a sweep folder: accuracy per round with the spread over seeds, final accuracy and
rounds-to-target against alpha and against mu / lam, and a markdown table of mean ± std over seeds.

Trials whose parameters differ only in `run.seed` form one group. A group is labelled by its
algorithm and the parameters that vary among that algorithm's trials ("fedprox mu=0.01 alpha=0.3").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fedref_ray.algorithms.registry import algorithm_class
from fedref_ray.errors import UserError
from fedref_ray.report import mean_std, to_target_cell
from fedref_ray.tune.layout import BEST_FILE, EXPERIMENT_NAME, TRIALS_FILE

SEED = "run.seed"
ALGORITHM = "algorithm.name"
ALPHA = "partition.alpha"
NEEDED = ("trial_id", "round", "test_accuracy", "forgetting", "bytes_total", "stopped_early", ALGORITHM, SEED,
          "run.target_accuracy")  # fmt: skip
TABLE_HEADER = (
    "group",
    "trials (seeds)",
    "final accuracy",
    "best accuracy",
    "rounds to target",
    "final forgetting",
    "MB sent",
    "stopped early",
)


def load_trials_table(sweep_dir: str | Path) -> pd.DataFrame:
    """Read trials.parquet of a sweep folder; a missing file or column is a UserError."""
    path = Path(sweep_dir) / TRIALS_FILE
    if not path.is_file():
        raise UserError(f"sweep folder '{sweep_dir}' has no {TRIALS_FILE}: is it a fedref-ray tune sweep?")
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"sweep folder '{sweep_dir}': {TRIALS_FILE} is unreadable ({type(exc).__name__})") from None
    missing = [c for c in NEEDED if c not in table.columns]
    if missing:
        raise UserError(f"sweep folder '{sweep_dir}': {TRIALS_FILE} lacks column(s) {', '.join(missing)}")
    if table.empty:
        raise UserError(f"sweep folder '{sweep_dir}': {TRIALS_FILE} has no rows (no trial reported a round yet)")
    return table


def param_columns(table: pd.DataFrame) -> list[str]:
    """Parameter columns are named by config field (section.key)."""
    return [c for c in table.columns if "." in c]


def _rounds_to_target(rows: pd.DataFrame) -> float:
    reached = rows.loc[rows["test_accuracy"] >= rows["run.target_accuracy"], "round"]
    return float(reached.iloc[0]) if len(reached) else math.nan


def trial_summaries(table: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: its parameters, final and best accuracy, rounds to target (nan: not reached), costs."""
    rows = []
    for trial_id, group in table.sort_values("round").groupby("trial_id", sort=False):
        last = group.iloc[-1]
        rows.append({
            "trial_id": trial_id,
            **{c: last[c] for c in param_columns(table)},
            "final_accuracy": float(last["test_accuracy"]),
            "best_accuracy": float(group["test_accuracy"].max()),
            "rounds_to_target": _rounds_to_target(group),
            "final_forgetting": float(last["forgetting"]),
            "mb_sent": float(last["bytes_total"]) / 1e6,
            "rounds": int(last["round"]),
            "stopped_early": bool(last["stopped_early"]),
        })  # fmt: skip
    return pd.DataFrame(rows)


def varied_columns(trials: pd.DataFrame) -> list[str]:
    """Parameter columns with more than one value, the seed excepted."""
    return [c for c in param_columns(trials) if c != SEED and trials[c].nunique(dropna=False) > 1]


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _sort_key(value: Any) -> tuple[int, float, str]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def group_trials(trials: pd.DataFrame, by: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Trials grouped by the columns `by` (seeds merge), labelled by algorithm and what varies within it, sorted."""
    by = [c for c in by if c != ALGORITHM]
    within = {
        alg: [c for c in by if rows[c].nunique(dropna=False) > 1] for alg, rows in trials.groupby(ALGORITHM, sort=False)
    }
    leaves = [c.rsplit(".", 1)[-1] for c in by]
    names = {c: leaf if leaves.count(leaf) == 1 else c for c, leaf in zip(by, leaves, strict=True)}
    found: dict[str, tuple[tuple, pd.DataFrame]] = {}
    for key, rows in trials.groupby([ALGORITHM, *by], sort=False, dropna=False):
        values = dict(zip([ALGORITHM, *by], key if isinstance(key, tuple) else (key,), strict=True))
        alg = values[ALGORITHM]
        label = " ".join([str(alg)] + [f"{names[c]}={_format(values[c])}" for c in by if c in within[alg]])
        order = (str(alg), tuple(_sort_key(values[c]) for c in by))
        found[label] = (order, rows)
    return {label: rows for label, (_, rows) in sorted(found.items(), key=lambda item: (item[1][0], item[0]))}


def summary_row(label: str, rows: pd.DataFrame) -> list[str]:
    """Table cells of one group: mean ± sample std over its trials (seeds)."""
    seeds = ", ".join(str(s) for s in sorted(rows[SEED].tolist()))
    to_target = [None if math.isnan(v) else v for v in rows["rounds_to_target"]]
    return [
        label.replace("|", "\\|"),
        f"{len(rows)} ({seeds})",
        mean_std(rows["final_accuracy"].tolist(), 4),
        mean_std(rows["best_accuracy"].tolist(), 4),
        to_target_cell(to_target, 1),
        mean_std(rows["final_forgetting"].tolist(), 4),
        mean_std(rows["mb_sent"].tolist(), 2),
        str(int(rows["stopped_early"].sum())),
    ]


def summary_table(groups: Mapping[str, pd.DataFrame]) -> str:
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join(summary_row(label, rows)) + " |" for label, rows in groups.items()]
    return "\n".join(lines) + "\n"


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})


def plot_rounds(table: pd.DataFrame, trials: pd.DataFrame, varied: Sequence[str], path: Path) -> None:
    """Test accuracy per round, one panel per alpha (when swept), one line per group: mean and min..max over seeds."""
    facets = sorted(trials[ALPHA].unique(), key=_sort_key) if ALPHA in varied else [None]
    fig = Figure(figsize=(5 * len(facets), 4), dpi=100)
    FigureCanvasAgg(fig)
    for i, facet in enumerate(facets):
        ax = fig.add_subplot(1, len(facets), i + 1)
        subset = trials if facet is None else trials[trials[ALPHA] == facet]
        for j, (label, rows) in enumerate(group_trials(subset, [c for c in varied if c != ALPHA]).items()):
            curves = table[table["trial_id"].isin(rows["trial_id"])].pivot_table(
                index="round", columns="trial_id", values="test_accuracy"
            )
            ax.plot(curves.index, curves.mean(axis=1), color=f"C{j % 10}", label=f"{label} (n={len(rows)})")
            if len(rows) > 1:
                ax.fill_between(
                    curves.index, curves.min(axis=1), curves.max(axis=1), color=f"C{j % 10}", alpha=0.2, linewidth=0
                )
        ax.set_title("test accuracy" + ("" if facet is None else f", alpha={_format(facet)}"), fontsize=10)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("test accuracy (mean, band: min..max over seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    _save(fig, path)


def plot_against(
    trials: pd.DataFrame, x: str, lines: Sequence[str], path: Path, only: Sequence[str] | None = None
) -> None:
    """Final accuracy and rounds to target against `x`, one line per group of `lines` (mean ± std over seeds)."""
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)]
    subset = trials if only is None else trials[trials[ALGORITHM].isin(only)]
    for j, (label, rows) in enumerate(group_trials(subset, [c for c in lines if c != x]).items()):
        stats = rows.groupby(x)[["final_accuracy", "rounds_to_target"]].agg(["mean", "std"]).sort_index()
        for ax, column in zip(axes, ("final_accuracy", "rounds_to_target"), strict=True):
            ax.errorbar(stats.index, stats[(column, "mean")], yerr=stats[(column, "std")].fillna(0), color=f"C{j % 10}",
                        marker="o", capsize=3, label=label)  # fmt: skip
    for ax, ylabel in zip(axes, ("final test accuracy", "rounds to target (trials that reached it)"), strict=True):
        if (subset[x] > 0).all():
            ax.set_xscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(f"against {x}: mean ± std over seeds", fontsize=10)
    _save(fig, path)


def _coefficient_users(trials: pd.DataFrame, column: str) -> list[str]:
    """Algorithms among whose trials `column` takes more than one value."""
    return [alg for alg, rows in trials.groupby(ALGORITHM, sort=False) if rows[column].nunique() > 1]


def report_markdown(
    sweep_dir: Path, groups: Mapping[str, pd.DataFrame], trials: pd.DataFrame, plots: Sequence[str]
) -> str:
    best_path = sweep_dir / BEST_FILE
    best = json.loads(best_path.read_text()) if best_path.is_file() else None
    targets = ", ".join(f"{t:g}" for t in sorted(trials["run.target_accuracy"].unique()))
    lines = [
        f"# Sweep report: {sweep_dir}",
        "",
        f"{len(trials)} trials, {trials['rounds'].max()} rounds at most; target accuracy: {targets}",
        "",
    ]
    if best:
        params = ", ".join(f"{k}={_format(v)}" for k, v in best["params"].items())
        lines += [f"Best trial ({best['mode']} {best['metric']} at its last round): `{best['trial_id']}` {params}: "
                  f"{_format(best['value'])}", ""]  # fmt: skip
    lines += [
        summary_table(groups),
        "Cells are mean ± sample std (ddof=1) over the group's trials (seeds); rounds to target is the mean over",
        "the trials that reached it. Stopped early: trials a scheduler ended before their last round.",
        "",
        " ".join(f"![{p}]({p})" for p in plots),
        "",
        f"TensorBoard logs of every trial: `tensorboard --logdir {sweep_dir / EXPERIMENT_NAME}`",
    ]
    return "\n".join(lines) + "\n"


def coefficient_columns(trials: pd.DataFrame) -> list[str]:
    """The `algorithm.*` columns that are coefficients of the table's algorithms (each declares its own)."""
    names = [n for n in trials[ALGORITHM].dropna().unique()] if ALGORITHM in trials else []
    found = [f"algorithm.{c}" for n in names for c in _declared_coefficients(str(n))]
    return [c for c in dict.fromkeys(found) if c in trials]


def _declared_coefficients(name: str) -> tuple[str, ...]:
    try:
        return algorithm_class(name).coefficients
    except UserError:  # an algorithm of user code that is not importable here: no coefficient plots for it
        return ()


def write_sweep_report(sweep_dir: str | Path, out: str | Path | None = None) -> Path:
    """Read the sweep's trials.parquet and write the plots and report.md (default: SWEEP_DIR/report)."""
    sweep = Path(sweep_dir)
    table = load_trials_table(sweep)
    trials = trial_summaries(table)
    varied = varied_columns(trials)
    out_dir = Path(out) if out is not None else sweep / "report"
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out '{out_dir}' exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = ["accuracy_per_round.png"]
    plot_rounds(table, trials, varied, out_dir / plots[0])
    if ALPHA in varied:
        plots.append("vs_alpha.png")
        plot_against(trials, ALPHA, varied, out_dir / plots[-1])
    for column in coefficient_columns(trials):
        users = _coefficient_users(trials, column) if column in varied else []
        if users:
            plots.append(f"vs_{column.rsplit('.', 1)[-1]}.png")
            plot_against(trials, column, varied, out_dir / plots[-1], only=users)
    groups = group_trials(trials, varied)
    (out_dir / "report.md").write_text(report_markdown(sweep, groups, trials, plots))
    return out_dir
