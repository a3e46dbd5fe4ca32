"""The `fedref-ray` command: run an experiment, or report on finished ones.

User mistakes print one line to stderr and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import dataclasses
import sys
import time
from collections.abc import Sequence

from fedref_ray.config import ExperimentConfig, load_config
from fedref_ray.errors import UserError


def _split_config_and_overrides(items: Sequence[str]) -> tuple[str | None, list[str]]:
    """The first item is the config file unless it looks like an override (`section.key...`)."""
    if items and "=" not in items[0] and (items[0].endswith((".yaml", ".yml")) or os.path.exists(items[0])):
        return items[0], list(items[1:])
    return None, list(items)


def resolve_results_dir(cfg: ExperimentConfig) -> ExperimentConfig:
    """Fill a null run.results_dir with results/<algorithm>-seed<seed>-<time>."""
    if cfg.run.results_dir is not None:
        return cfg
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = f"results/{cfg.algorithm.name}-seed{cfg.run.seed}-{stamp}"
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, results_dir=path))


def cmd_run(args: argparse.Namespace) -> int:
    path, overrides = _split_config_and_overrides(args.items)
    cfg = resolve_results_dir(load_config(path, overrides))
    from fedref_ray.simulation import run_experiment  # imports torch: only once the config is valid

    result = run_experiment(cfg, quiet=args.quiet, overwrite=args.overwrite)
    s = result.summary
    print(
        f"done: {s['rounds']} rounds, final accuracy {s['final_accuracy']:.4f}, best {s['best_accuracy']:.4f}, "
        f"rounds to {s['target_accuracy']}: {s['rounds_to_target']}; results in {result.results_dir}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from fedref_ray.report import write_report

    out = write_report(args.results_dirs, args.out)
    print(f"report written to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedref-ray", description="Federated-learning simulator built around FedRef, on Ray.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one experiment: [CONFIG.yaml] [section.key=value ...]")
    run.add_argument("items", nargs="*", help="an optional config file, then dotted overrides")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--overwrite", action="store_true", help="replace the files of a non-empty results folder")
    run.set_defaults(func=cmd_run)
    report = sub.add_parser("report", help="plots and a markdown table comparing finished runs")
    report.add_argument("results_dirs", nargs="+", help="results folders of finished runs")
    report.add_argument("--out", default=None, help="where to write the report (default: report/ beside the first run)")
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # overrides written after an option land here
        if args.command != "run" or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.items = [*args.items, *extra]
    try:
        return args.func(args)
    except UserError as exc:
        print(f"fedref-ray: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fedref-ray: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
