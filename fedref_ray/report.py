"""Compare finished runs: accuracy, forgetting and cost plots plus a markdown table, with seeds grouped.

Runs whose configs differ only in `run.seed` (and `run.results_dir`) form one group; plots show the
group mean with a min..max band over seeds, and the table reports mean ± sample std over seeds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fedref_ray.errors import UserError

REPORT_FILES = ("config.yaml", "rounds.parquet", "summary.json")
ROUND_COLUMNS = ("round", "test_accuracy", "forgetting", "accuracy_drops", "bytes_down", "bytes_up")
IGNORED_KEYS = frozenset({"run.seed", "run.results_dir"})
TABLE_HEADER = (
    "group",
    "runs (seeds)",
    "final accuracy",
    "best accuracy",
    "rounds to target",
    "MB to target",
    "client samples to target",
    "final forgetting",
    "accuracy drops",
)
_MISSING = "<missing>"


@dataclass(frozen=True)
class Run:
    """One finished run: its folder, resolved config, per-round table and summary."""

    path: Path
    config: dict[str, Any]
    rounds: pd.DataFrame
    summary: dict[str, Any]

    @property
    def seed(self) -> int:
        return int((self.config.get("run") or {}).get("seed", self.summary.get("seed", 0)))

    @property
    def algorithm(self) -> str:
        return str((self.config.get("algorithm") or {}).get("name", self.summary.get("algorithm", "?")))


def load_run(path: str | Path) -> Run:
    """Read config.yaml, rounds.parquet and summary.json of a results folder; any problem is a UserError."""
    folder = Path(path)
    if not folder.is_dir():
        raise UserError(f"results folder '{folder}' does not exist or is not a directory")
    readers = {
        "config.yaml": lambda f: yaml.safe_load(f.read_text()),
        "rounds.parquet": pd.read_parquet,
        "summary.json": lambda f: json.loads(f.read_text()),
    }
    loaded: dict[str, Any] = {}
    for name in REPORT_FILES:
        if not (folder / name).is_file():
            raise UserError(f"results folder '{folder}' has no {name}: is it a finished fedref-ray run?")
        try:
            loaded[name] = readers[name](folder / name)
        except (OSError, ValueError, yaml.YAMLError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise UserError(f"results folder '{folder}': {name} is unreadable ({type(exc).__name__})") from None
    config, rounds, summary = (loaded[name] for name in REPORT_FILES)
    if not isinstance(config, dict) or not isinstance(summary, dict):
        raise UserError(f"results folder '{folder}': config.yaml and summary.json must each hold a mapping")
    missing = [c for c in ROUND_COLUMNS if c not in rounds.columns]
    if missing:
        raise UserError(f"results folder '{folder}': rounds.parquet lacks column(s) {', '.join(missing)}")
    return Run(folder, config, rounds.sort_values("round").reset_index(drop=True), summary)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config sections as {"section.key": value}."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        flat.update(flatten(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return flat


def differing_keys(runs: Sequence[Run]) -> list[str]:
    """Config keys (dotted, sorted) whose values differ among the runs that have them, seed and results_dir excepted.

    A key only some runs have (another algorithm's coefficient) differs only if those runs disagree on it.
    """
    flats = [flatten(r.config) for r in runs]
    keys = sorted(set().union(*flats) - IGNORED_KEYS) if flats else []
    return [k for k in keys if len({repr(f[k]) for f in flats if k in f}) > 1]


def _format_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def _sort_value(value: Any) -> tuple[int, float, str]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, _format_value(value))


def group_runs(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Group runs by algorithm plus the differing config values (e.g. "fedref lam=0.1"), sorted; seeds merge."""
    keys = [k for k in differing_keys(runs) if k != "algorithm.name"]
    leaves = [k.rsplit(".", 1)[-1] for k in keys]
    names = [leaf if leaves.count(leaf) == 1 else key for key, leaf in zip(keys, leaves, strict=True)]
    found: dict[str, tuple[tuple, list[Run]]] = {}
    for run in runs:
        flat = flatten(run.config)
        values = [flat.get(k, _MISSING) for k in keys]
        shown = [f"{n}={_format_value(v)}" for n, v in zip(names, values, strict=True) if v is not _MISSING]
        label = " ".join([run.algorithm, *shown])
        order = (run.algorithm, tuple(_sort_value(v) for v in values))
        found.setdefault(label, (order, []))[1].append(run)
    ordered = sorted(found.items(), key=lambda item: (item[1][0], item[0]))
    return {label: sorted(rs, key=lambda r: (r.seed, str(r.path))) for label, (_, rs) in ordered}


def _stats(values: Sequence[float | None]) -> tuple[float, float, int]:
    """Mean, sample std (ddof=1; nan for one value) and count of the values that are present."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return math.nan, math.nan, 0
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else math.nan
    return mean, std, len(vals)


def mean_std(values: Sequence[float | None], digits: int) -> str:
    """Format as "mean ± std" with fixed digits; just the mean for a single value, "n/a" for none."""
    mean, std, n = _stats(values)
    if n == 0:
        return "n/a"
    return f"{mean:.{digits}f}" if n == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def to_target_cell(values: Sequence[float | None], digits: int, scale: float = 1.0) -> str:
    """Mean cost over the runs that reached the target; says how many did when not all of them."""
    reached = [float(v) / scale for v in values if v is not None]
    if not reached:
        return f"not reached (0/{len(values)})"
    cell = f"{sum(reached) / len(reached):.{digits}f}"
    return cell if len(reached) == len(values) else f"{cell} ({len(reached)}/{len(values)} reached)"


def _last(run: Run, column: str) -> float | None:
    return float(run.rounds[column].iloc[-1]) if len(run.rounds) else None


def summary_row(label: str, runs: Sequence[Run]) -> list[str]:
    """The table cells of one group, in TABLE_HEADER order."""
    summaries = [r.summary for r in runs]
    return [
        label.replace("|", "\\|"),
        f"{len(runs)} ({', '.join(str(r.seed) for r in runs)})",
        mean_std([s.get("final_accuracy") for s in summaries], 4),
        mean_std([s.get("best_accuracy") for s in summaries], 4),
        to_target_cell([s.get("rounds_to_target") for s in summaries], 1),
        to_target_cell([s.get("bytes_to_target") for s in summaries], 3, scale=1e6),
        to_target_cell([s.get("samples_to_target") for s in summaries], 0),
        mean_std([_last(r, "forgetting") for r in runs], 4),
        mean_std([_last(r, "accuracy_drops") for r in runs], 1),
    ]


def summary_table(groups: dict[str, list[Run]]) -> str:
    """A markdown table with one row per group, in the order of `groups`."""
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join(summary_row(label, runs)) + " |" for label, runs in groups.items()]
    return "\n".join(lines) + "\n"


def run_series(run: Run, column: str) -> pd.Series:
    """A rounds.parquet column indexed by round; "mb_sent" is cumulative (bytes_down + bytes_up) / 10^6."""
    rounds = run.rounds.set_index("round")
    if column == "mb_sent":
        return (rounds["bytes_down"] + rounds["bytes_up"]).astype(float) / 1e6
    return rounds[column].astype(float)


def group_curve(runs: Sequence[Run], column: str) -> pd.DataFrame:
    """Per round: mean, min and max of `column` over the runs (rounds missing in some runs use the others)."""
    table = pd.concat([run_series(r, column) for r in runs], axis=1)
    return pd.DataFrame({"mean": table.mean(axis=1), "lo": table.min(axis=1), "hi": table.max(axis=1)})


def _plot(groups: dict[str, list[Run]], path: Path, column: str, ylabel: str, title: str, x_mb: bool = False) -> None:
    """One line per group (mean over seeds) with a min..max band, saved as a small PNG."""
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = FigureCanvasAgg(fig).figure.add_subplot()
    for i, (label, runs) in enumerate(groups.items()):
        curve = group_curve(runs, column)
        x = group_curve(runs, "mb_sent")["mean"] if x_mb else pd.Series(curve.index, index=curve.index)
        ax.plot(x, curve["mean"], color=f"C{i % 10}", label=f"{label} (n={len(runs)})")
        if len(runs) > 1:
            ax.fill_between(x, curve["lo"], curve["hi"], color=f"C{i % 10}", alpha=0.2, linewidth=0)
    ax.set_xlabel("cumulative MB sent (down + up, 10^6 bytes)" if x_mb else "round")
    if not x_mb:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (mean, band: min..max over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})


def _target(run: Run) -> float:
    value = run.summary.get("target_accuracy", (run.config.get("run") or {}).get("target_accuracy"))
    return float(value) if value is not None else math.nan


def report_markdown(groups: dict[str, list[Run]]) -> str:
    """The whole report.md: target line, table, notes and the folders of each group."""
    targets = sorted({_target(r) for rs in groups.values() for r in rs})
    lines = [
        "# fedref-ray report",
        "",
        f"Target accuracy: {', '.join(f'{t:g}' for t in targets)}",
        "",
        summary_table(groups),
        "Accuracy and forgetting cells are mean ± sample std (ddof=1) over seeds; costs to target are means",
        "over the runs that reached it. Plots show the mean with a min..max band over seeds.",
        "",
        "![test accuracy](accuracy.png) ![forgetting](forgetting.png) ![accuracy vs MB](accuracy_vs_bytes.png)",
        "",
        "## Runs",
        "",
    ]
    lines += [f"- {label}: " + ", ".join(f"`{r.path}`" for r in runs) for label, runs in groups.items()]
    return "\n".join(lines) + "\n"


def write_report(results_dirs: Sequence[str | Path], out: str | Path | None) -> Path:
    """Load every run (failing before writing anything), group seeds, and write the plots and report.md."""
    if not results_dirs:
        raise UserError("report needs at least one results folder")
    groups = group_runs([load_run(d) for d in results_dirs])
    out_dir = Path(out) if out is not None else Path(results_dirs[0]).resolve().parent / "report"
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out '{out_dir}' exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    _plot(groups, out_dir / "accuracy.png", "test_accuracy", "test accuracy", "Test accuracy per round")
    _plot(groups, out_dir / "forgetting.png", "forgetting", "forgetting", "Forgetting per round")
    _plot(groups, out_dir / "accuracy_vs_bytes.png", "test_accuracy", "test accuracy", "Accuracy vs MB", x_mb=True)
    (out_dir / "report.md").write_text(report_markdown(groups))
    return out_dir
