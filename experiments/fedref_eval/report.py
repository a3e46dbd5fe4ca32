"""FedRef evaluation report: tables and plots from the committed results of run_study.py.

    python experiments/fedref_eval/report.py [--results experiments/fedref_eval/results] [--out DIR]

Writes `report.md` (the headline table, one full table per dataset, the tuning table),
`accuracy.png` and `forgetting.png` (mean curves over seeds per cell). The output depends only on
the results files (sorted rows, fixed formats, PNGs without timestamps): running it twice, or on
another machine with the same library versions, gives the same files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import study

NAMES = {"fedavg": "FedAvg", "fedprox": "FedProx", "fedopt": "FedAdam", "fedref": "FedRef"}
COLORS = {"fedavg": "tab:blue", "fedprox": "tab:orange", "fedopt": "tab:green", "fedref": "tab:red"}
COEFFICIENT_NAMES = {"algorithm.mu": "mu", "algorithm.lam": "lam", "algorithm.server_lr": "server lr"}


def cell_label(alpha: float, faulty: float) -> str:
    return f"alpha {alpha:g}" + (f", {faulty:.0%} faulty" if faulty > 0 else "")


def _cells(frame: pd.DataFrame) -> list[tuple[float, float]]:
    """Cells in study order: the clean alphas, then the faulty fractions."""
    pairs = frame[list(study.CELL_FIELDS)].drop_duplicates().itertuples(index=False, name=None)
    return sorted(pairs, key=lambda p: (p[1], p[0]))


def _mean_sd(values: pd.Series, nd: int = 3) -> str:
    v = values.dropna()
    if v.empty:
        return "-"
    sd = v.std(ddof=1) if len(v) > 1 else 0.0
    return f"{v.mean():.{nd}f} ± {sd:.{nd}f}"


def _reached(values: pd.Series, fmt: str) -> str:
    """Mean over the seeds that reached the target, with how many did when not all."""
    v = values.dropna()
    if v.empty:
        return f"- (0/{len(values)})"
    text = format(v.mean(), fmt)
    return text if len(v) == len(values) else f"{text} ({len(v)}/{len(values)})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def _coefficients(setting: dict) -> str:
    parts = [f"{COEFFICIENT_NAMES[f]} {setting[f]:g}" for f in study.COEFFICIENTS[setting["algorithm.name"]]]
    return ", ".join([*parts, f"lr {setting['training.lr']:g}"])


def in_cell(frame: pd.DataFrame, dataset: str, alpha: float, faulty: float) -> pd.DataFrame:
    """The rows of one dataset x heterogeneity cell."""
    return frame[
        (frame["data.name"] == dataset)
        & (frame["partition.alpha"] == alpha)
        & (frame["system.faulty_fraction"] == faulty)
    ]


def _final_accs(summaries: pd.DataFrame) -> dict[str, pd.Series]:
    return {a: summaries[summaries["algorithm.name"] == a]["final_acc"] for a in study.ALGORITHMS}


def _best_baseline(finals: dict[str, pd.Series]) -> str:
    return max((a for a in study.ALGORITHMS if a != "fedref"), key=lambda a: finals[a].mean())


def headline(summaries: pd.DataFrame) -> list[str]:
    """Final accuracy (mean over seeds) per dataset x cell x algorithm, and FedRef minus the best baseline."""
    header = ["dataset", "cell", *(NAMES[a] for a in study.ALGORITHMS), "FedRef − best baseline"]
    rows = []
    for dataset in sorted(summaries["data.name"].unique()):
        for alpha, faulty in _cells(summaries):
            finals = _final_accs(in_cell(summaries, dataset, alpha, faulty))
            gap = finals["fedref"].mean() - finals[_best_baseline(finals)].mean()
            cells = [_mean_sd(finals[a]) for a in study.ALGORITHMS]
            rows.append([dataset, cell_label(alpha, faulty), *cells, f"{gap:+.3f}"])
    return _table(header, rows)


def full_table(summaries: pd.DataFrame, dataset: str, target: float) -> list[str]:
    header = [
        "cell",
        "algorithm",
        "final acc",
        "best acc",
        f"rounds to {target:g}",
        "MB to target",
        "samples to target (k)",
        "final forgetting",
        "mean forgetting",
        "acc. drops",
    ]
    rows = []
    for alpha, faulty in _cells(summaries):
        mine = in_cell(summaries, dataset, alpha, faulty)
        for algorithm in study.ALGORITHMS:
            s = mine[mine["algorithm.name"] == algorithm]
            rows.append(
                [
                    cell_label(alpha, faulty),
                    NAMES[algorithm],
                    _mean_sd(s["final_acc"]),
                    _mean_sd(s["best_acc"]),
                    _reached(s["rounds_to_target"], ".1f"),
                    _reached(s["mb_to_target"], ".3g"),
                    _reached(s["samples_to_target"] / 1e3, ".0f"),
                    _mean_sd(s["final_forgetting"]),
                    _mean_sd(s["mean_forgetting"]),
                    f"{s['accuracy_drops'].mean():.1f}",
                ]
            )
    return _table(header, rows)


def _variant_label(lam: float, gate: float) -> str:
    return f"lam {lam:g}" + ("" if pd.isna(gate) else f", gate {gate:g}")


def sensitivity_table(summaries: pd.DataFrame, variants: pd.DataFrame, settings: list[dict]) -> list[str]:
    """Final accuracy per cell: the best tuned baseline, tuned FedRef, and FedRef's untuned prior variants."""
    tuned = {s["data.name"]: s["algorithm.lam"] for s in settings if s["algorithm.name"] == "fedref"}
    pairs = variants[["algorithm.lam", "algorithm.gate_delta"]].drop_duplicates().itertuples(index=False)
    keys = sorted(pairs, key=lambda k: (k[0], not pd.isna(k[1]), 0.0 if pd.isna(k[1]) else k[1]))
    labels = [_variant_label(*k) for k in keys]
    variants = variants.assign(
        variant=[_variant_label(*k) for k in zip(variants["algorithm.lam"], variants["algorithm.gate_delta"])]
    )
    header = ["dataset", "cell", "best baseline", "FedRef tuned", *(f"FedRef {label}" for label in labels)]
    rows = []
    for dataset in sorted(summaries["data.name"].unique()):
        for alpha, faulty in _cells(summaries):
            finals = _final_accs(in_cell(summaries, dataset, alpha, faulty))
            best = _best_baseline(finals)
            mine = in_cell(variants, dataset, alpha, faulty)
            cells = [
                f"{NAMES[best]} {_mean_sd(finals[best])}",
                f"lam {tuned[dataset]:g}: {_mean_sd(finals['fedref'])}",
                *(_mean_sd(mine[mine["variant"] == label]["final_acc"]) for label in labels),
            ]
            rows.append([dataset, cell_label(alpha, faulty), *cells])
    return _table(header, rows)


def tuning_table(tune_trials: pd.DataFrame, settings: list[dict]) -> list[str]:
    """Mean final accuracy of every tuning point, learning rates as columns; the chosen point in bold."""
    scores = study.tuning_scores(tune_trials)
    lrs = sorted(scores["training.lr"].unique())
    chosen = {(s["data.name"], s["algorithm.name"]): s for s in settings}
    cells: dict[tuple[str, str, str], dict[float, str]] = {}
    for row in scores.to_dict("records"):
        fields = study.COEFFICIENTS[row["algorithm.name"]]
        label = ", ".join(f"{COEFFICIENT_NAMES[f]} {row[f]:g}" for f in fields) or "-"
        pick = chosen[(row["data.name"], row["algorithm.name"])]
        text = f"{row['score']:.3f}"
        bold = all(row[f] == pick[f] for f in (*fields, "training.lr"))
        cells.setdefault((row["data.name"], row["algorithm.name"], label), {})[row["training.lr"]] = (
            f"**{text}**" if bold else text
        )
    order = {a: i for i, a in enumerate(study.ALGORITHMS)}
    keys = sorted(cells, key=lambda k: (k[0], order[k[1]], k[2]))
    rows = [[d, NAMES[a], label, *(cells[(d, a, label)].get(lr, "-") for lr in lrs)] for d, a, label in keys]
    return _table(["dataset", "algorithm", "coefficients", *(f"lr {lr:g}" for lr in lrs)], rows)


def curves(trials: pd.DataFrame, metric: str, ylabel: str, path: Path) -> None:
    """Mean over seeds of `metric` per round: one panel per dataset x cell, one line per algorithm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted(trials["data.name"].unique())
    cells = _cells(trials)
    fig, axes = plt.subplots(len(datasets), len(cells), figsize=(2.2 * len(cells), 2.0 * len(datasets)), squeeze=False)
    for i, dataset in enumerate(datasets):
        for j, (alpha, faulty) in enumerate(cells):
            ax = axes[i][j]
            sel = in_cell(trials, dataset, alpha, faulty)
            for algorithm in study.ALGORITHMS:
                mean = sel[sel["algorithm.name"] == algorithm].groupby("round")[metric].mean()
                ax.plot(mean.index, mean.values, color=COLORS[algorithm], lw=1.0, label=NAMES[algorithm])
            ax.set_title(f"{dataset}: {cell_label(alpha, faulty)}", fontsize=7)
            ax.tick_params(labelsize=6)
            if j == 0:
                ax.set_ylabel(ylabel, fontsize=7)
            if i == len(datasets) - 1:
                ax.set_xlabel("round", fontsize=7)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)


def write_report(results: Path, out: Path) -> None:
    eval_trials = pd.read_parquet(results / study.EVAL_TRIALS.name)
    variants = study.run_summaries(
        pd.read_parquet(results / study.SENSITIVITY_TRIALS.name), ("algorithm.lam", "algorithm.gate_delta")
    )
    tune_trials = pd.read_parquet(results / study.TUNE_TRIALS.name)
    settings = json.loads((results / study.TUNED.name).read_text())
    meta = json.loads((results / study.META.name).read_text())
    summaries = study.run_summaries(eval_trials)
    rounds = sorted(summaries["rounds"].unique())
    seeds = sorted(summaries["run.seed"].unique())
    lines = [
        "# FedRef evaluation: results",
        "",
        "Generated by `python experiments/fedref_eval/report.py` from the files in this folder.",
        f"Runs: {len(summaries)} evaluation runs of {', '.join(map(str, rounds))} rounds, seeds "
        f"{', '.join(map(str, seeds))}; {tune_trials['trial_id'].nunique()} tuning runs; {len(variants)} "
        f"sensitivity runs. Machine: {meta.get('machine', '-')}. Wall time: tuning "
        f"{meta.get('tune_wall_seconds', '-')} s, evaluation {meta.get('eval_wall_seconds', '-')} s, "
        f"sensitivity {meta.get('sensitivity_wall_seconds', '-')} s.",
        "Mean ± standard deviation over seeds. Costs to the target are means over the seeds that reached "
        "it, (k/3) when not all did. Forgetting is METHOD.md's: the mean over classes of the best class "
        "accuracy so far minus the current one (final: at the last round; mean: over all rounds).",
        "",
        "## Tuned settings (stage 1, alpha 0.3, no faults, seeds 10 and 11)",
        "",
        *_table(
            ["dataset", "algorithm", "coefficients", "tuning score"],
            [
                [s["data.name"], NAMES[s["algorithm.name"]], _coefficients(s), f"{s['tuning_score']:.3f}"]
                for s in settings
            ],
        ),
        "",
        "## Headline: final test accuracy",
        "",
        *headline(summaries),
    ]
    for dataset in sorted(summaries["data.name"].unique()):
        target = float(summaries[summaries["data.name"] == dataset]["target"].iloc[0])
        lines += ["", f"## {dataset} (target accuracy {target:g})", "", *full_table(summaries, dataset, target)]
    lines += [
        "",
        "## Sensitivity: FedRef's final accuracy with other priors (stage 3, untuned, same cells and seeds)",
        "",
        "The best baseline and tuned FedRef are the headline's; the other columns fix lam (and the drift",
        "gate: apply the prior only when the clients' cost rose) at the tuned FedRef learning rate.",
        "",
        *sensitivity_table(summaries, variants, settings),
    ]
    lines += [
        "",
        "## Tuning: mean final accuracy over the two tuning seeds (chosen in bold)",
        "",
        *tuning_table(tune_trials, settings),
        "",
        "![accuracy](accuracy.png)",
        "",
        "![forgetting](forgetting.png)",
        "",
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text("\n".join(lines))
    curves(eval_trials, "test_accuracy", "test accuracy", out / "accuracy.png")
    curves(eval_trials, "forgetting", "forgetting", out / "forgetting.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=study.RESULTS, help="folder with run_study.py's results")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the results folder)")
    args = parser.parse_args(argv)
    missing = [
        name
        for name in (
            study.EVAL_TRIALS.name,
            study.TUNE_TRIALS.name,
            study.SENSITIVITY_TRIALS.name,
            study.TUNED.name,
            study.META.name,
        )
        if not (args.results / name).is_file()
    ]
    if missing:
        print(f"error: {args.results} lacks {', '.join(missing)}: run run_study.py first", file=sys.stderr)
        return 2
    out = args.out or args.results
    write_report(args.results, out)
    print(f"wrote {out / 'report.md'}, accuracy.png, forgetting.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
