"""The `fedref-ray` command: run an experiment, sweep with Tune, or report on finished ones.

A thin layer over `fedref_ray.api`. User mistakes print one line to stderr and exit with code 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from fedref_ray.errors import EngineFailure, RunInterrupted, UserError


def _split_config_and_overrides(items: Sequence[str]) -> tuple[str | None, list[str]]:
    """The first item is the config file unless it looks like an override (`section.key...`)."""
    if items and "=" not in items[0] and (items[0].endswith((".yaml", ".yml")) or os.path.exists(items[0])):
        return items[0], list(items[1:])
    return None, list(items)


def cmd_run(args: argparse.Namespace) -> int:
    from fedref_ray import api

    path, overrides = _split_config_and_overrides(args.items)
    try:
        result = api.run(path, overrides, quiet=args.quiet, overwrite=args.overwrite, resume=args.resume)
    except RunInterrupted as stop:
        print(f"fedref-ray: {stop}", file=sys.stderr)
        return 128 + stop.signum
    except EngineFailure as exc:  # Ray lost or stalled an actor for good: one line, and how to go on
        out = exc.results_dir
        resumable = out is not None and any((out / "checkpoints").glob("round-*"))
        hint = f"; resume with: fedref-ray run --resume {out}" if resumable else ""
        print(f"fedref-ray: error: {exc}{hint}", file=sys.stderr)
        return 1
    s = result.summary
    print(
        f"done: {s['rounds']} rounds, final accuracy {s['final_accuracy']:.4f}, best {s['best_accuracy']:.4f}, "
        f"rounds to {s['target_accuracy']}: {s['rounds_to_target']}; results in {result.results_dir}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from fedref_ray.tune.layout import is_sweep_dir

    sweeps = [d for d in args.results_dirs if is_sweep_dir(d)]
    if sweeps and len(args.results_dirs) > 1:
        given = len(args.results_dirs)
        raise UserError(f"report takes one sweep folder at a time: '{sweeps[0]}' is one of {given} folders given")
    if sweeps:
        from fedref_ray.tune.sweep_report import write_sweep_report

        out = write_sweep_report(sweeps[0], args.out)
    else:
        from fedref_ray.report import write_report

        out = write_report(args.results_dirs, args.out)
    print(f"report written to {out}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    """Run a sweep file (validated before Ray starts), or resume an interrupted sweep folder."""
    from fedref_ray import api

    if args.items and "=" in args.items[0]:
        raise UserError("tune needs a sweep file first: fedref-ray tune SWEEP.yaml [section.key=value ...]")
    sweep_file, overrides = (args.items[0], args.items[1:]) if args.items else (None, [])
    result = api.sweep(
        sweep_file,
        overrides,
        results_dir=args.results_dir,
        quiet=args.quiet,
        ray_num_cpus=args.ray_num_cpus,
        resume=args.resume,
    )
    o = result.outcome
    counts = f"{o.trials} trials: {o.finished} finished, {o.failed} failed, {o.unfinished} unfinished"
    if o.interrupted:
        resume = f"fedref-ray tune --resume {o.sweep_dir}"
        print(f"fedref-ray: sweep interrupted ({counts}); resume with: {resume}", file=sys.stderr)
        return 130
    best = o.best
    if best is not None:
        print(f"best: trial {best['trial_id']} {best['metric']}={best['value']:.4f} ({best['params']})")
    print(f"sweep done in {o.wall_seconds:.0f} s ({counts}); results in {o.sweep_dir}; fedref-ray report {o.sweep_dir}")
    if o.failed:
        print(f"fedref-ray: {o.failed} trial(s) failed; tracebacks: {', '.join(o.error_files)}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedref-ray", description="Federated-learning simulator built around FedRef, on Ray."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one experiment: [CONFIG.yaml] [section.key=value ...]")
    run.add_argument("items", nargs="*", help="an optional config file, then dotted overrides")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous run's results folder",
    )
    run.add_argument("--resume", metavar="RESULTS_DIR", default=None, help="continue a run from its latest checkpoint")
    run.set_defaults(func=cmd_run)
    report = sub.add_parser("report", help="plots and a markdown table comparing finished runs")
    report.add_argument("results_dirs", nargs="+", help="results folders of finished runs, or one sweep folder")
    report.add_argument("--out", default=None, help="where to write the report (default: report/ beside the first run)")
    report.set_defaults(func=cmd_report)
    tune = sub.add_parser("tune", help="a Ray Tune sweep: SWEEP.yaml [section.key=value ...], or --resume SWEEP_DIR")
    tune.add_argument("items", nargs="*", help="the sweep file, then dotted overrides of its base config")
    tune.add_argument("--resume", metavar="SWEEP_DIR", default=None, help="resume an interrupted sweep folder")
    tune.add_argument("--results-dir", default=None, help="the sweep folder (default: results/tune-<sweep>-<time>)")
    tune.add_argument("--ray-num-cpus", type=int, default=None, help="logical CPUs of a Ray this command starts")
    tune.add_argument("--quiet", action="store_true", help="no progress tables")
    tune.set_defaults(func=cmd_tune)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # overrides written after an option land here
        if args.command not in ("run", "tune") or any(e.startswith("-") for e in extra):
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
