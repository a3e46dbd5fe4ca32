"""Regenerate results/curves.png and results/report.md from the committed results/rounds.parquet.

    python experiments/fedprox_synthetic/report.py

Deterministic: only reads the parquet (no training). Curves: test loss (the global model's
cross-entropy on the pooled held-out data; see the README for why not the paper's training
loss) and test accuracy per round, one column per straggler level, one line per method.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
STYLE = {"FedAvg": (":", "#ff7f0e"), "FedProx mu=0": ("--", "#e377c2"), "FedProx mu=1": ("-", "#17becf")}


def table(df: pd.DataFrame, last: int = 10) -> str:
    """Mean over seeds of the last `last` rounds' test accuracy and loss, and the final round's."""
    final = int(df["round"].max())
    lines = [
        f"| stragglers | method | test acc, round {final} | test acc, mean rounds {final - last + 1}-{final} "
        f"| test loss, round {final} | samples trained (total) |",
        "|---|---|---|---|---|---|",
    ]
    for (frac, method), g in df.groupby(["stragglers", "method"], sort=True):
        end = g[g["round"] == final]
        tail = g[g["round"] > final - last]
        lines.append(
            f"| {frac:.0%} | {method} | {end.test_accuracy.mean():.3f} | {tail.test_accuracy.mean():.3f} "
            f"| {end.test_loss.mean():.3f} | {int(end.samples.mean()):,} |"
        )
    return "\n".join(lines) + "\n"


def plot(df: pd.DataFrame, out: Path) -> None:
    levels = sorted(df.stragglers.unique())
    fig, axes = plt.subplots(2, len(levels), figsize=(4.2 * len(levels), 6.5), sharex=True, squeeze=False)
    for col, frac in enumerate(levels):
        for method, (ls, color) in STYLE.items():
            g = df[(df.stragglers == frac) & (df.method == method)].groupby("round").mean(numeric_only=True)
            if g.empty:
                continue
            axes[0, col].plot(g.index, g.test_loss, ls, color=color, lw=2, label=method)
            axes[1, col].plot(g.index, g.test_accuracy, ls, color=color, lw=2, label=method)
        axes[0, col].set_title(f"Synthetic(1,1), {frac:.0%} stragglers")
        axes[1, col].set_xlabel("round")
    axes[0, 0].set_ylabel("test loss (global model)")
    axes[1, 0].set_ylabel("test accuracy")
    axes[1, 0].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110, metadata={"Software": None})
    plt.close(fig)


def main() -> None:
    df = pd.read_parquet(RESULTS / "rounds.parquet")
    plot(df, RESULTS / "curves.png")
    text = table(df)
    (RESULTS / "report.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
