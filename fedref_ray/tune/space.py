"""The sweep file: a base experiment config and a search space over config fields, parsed into a typed spec.

A dimension is written `field: KIND [args]` (or `field: {KIND: [args]}`) with KIND one of Tune's
`grid`, `choice`, `uniform`, `loguniform`, `randint` (high excluded, as in Tune). A name that is
not a config field names a joint dimension: a `grid` or `choice` of mappings `{section.key: value}`
that set several fields together (e.g. FedProx with its mu, FedRef with its lam). Every field, range
and value is checked, and the grid points are built into `ExperimentConfig`s before any trial starts:
all of them up to MAX_PROBES points (ranges at both ends), else each dimension's values in turn.

A space may cross algorithms with coefficients (`algorithm.name: grid [fedavg, fedref]` with
`algorithm.lam: ...`): a trial leaves out the coefficients its algorithm does not take, as long as
a built-in algorithm or the base's takes them; any other key is an error.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from fedref_ray.algorithms.registry import BUILTIN_ALGORITHMS
from fedref_ray.config import (
    ExperimentConfig,
    algorithm_keys,
    build_config,
    parse_override,
    read_yaml,
    switch_algorithm,
)
from fedref_ray.errors import UserError
from fedref_ray.tune.metrics import METRIC_NAMES

Kind = Literal["grid", "choice", "uniform", "loguniform", "randint"]
KINDS: tuple[str, ...] = typing.get_args(Kind)
SWEEP_KEYS = (
    "base",
    "overrides",
    "space",
    "num_samples",
    "seed",
    "scheduler",
    "trial_cpus",
    "max_concurrent_trials",
    "ray_num_cpus",
    "results_dir",
)
SCHEDULER_KEYS = ("name", "metric", "mode", "grace_period", "reduction_factor")
MAX_PROBES = 4096  # grid points checked one by one; larger spaces are checked one dimension at a time
_SPACE_TEXT = re.compile(r"^\s*([A-Za-z_]+)\s*(.*)$", re.DOTALL)


class SweepLoader(yaml.SafeLoader):
    """YAML's safe loader that also reads `1e-4` as a number (YAML 1.2; 1.1 wants `1.0e-4`)."""


SweepLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


@dataclass(frozen=True)
class Dimension:
    """One axis of the search space: a config field (or a joint label) and how Tune draws its values.

    `values` holds the options of `grid` and `choice` (mappings of fields for a joint dimension)
    and `(low, high)` for `uniform`, `loguniform` and `randint`.
    """

    name: str
    kind: Kind
    values: tuple[Any, ...]

    @property
    def joint(self) -> bool:
        return "." not in self.name

    def fields(self) -> tuple[str, ...]:
        """The config fields this dimension sets, in first-seen order."""
        if not self.joint:
            return (self.name,)
        return tuple(dict.fromkeys(k for option in self.values for k in option))

    def probe_values(self) -> list[Any]:
        """Values worth checking: every option, or both ends of a range."""
        if self.kind in ("grid", "choice"):
            return list(self.values)
        low, high = self.values
        return [low, high - 1] if self.kind == "randint" else [low, high]


@dataclass(frozen=True)
class SchedulerSpec:
    """Which trial scheduler to use and what it optimises; ASHA stops trials at rungs grace_period * rf^k."""

    name: Literal["fifo", "asha"] = "fifo"
    metric: str = "test_accuracy"
    mode: Literal["max", "min"] = "max"
    grace_period: int = 1
    reduction_factor: float = 2.0


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the resolved base config (plain data), the search space and how to run it."""

    source: str
    base: Mapping[str, Any]
    space: tuple[Dimension, ...]
    num_samples: int = 1
    seed: int = 0
    scheduler: SchedulerSpec = SchedulerSpec()
    trial_cpus: float = 1.0
    max_concurrent_trials: int | None = None
    ray_num_cpus: int | None = None
    results_dir: str | None = None

    def fields(self) -> tuple[str, ...]:
        """Every config field the space sets (the parameter columns of trials.parquet)."""
        return tuple(dict.fromkeys(f for d in self.space for f in d.fields()))

    def num_grid_points(self) -> int:
        """Trials Tune will run: the product of grid sizes, times num_samples."""
        return math.prod(len(d.values) for d in self.space if d.kind == "grid") * self.num_samples


@functools.cache
def config_fields() -> dict[str, tuple[str, ...]]:
    """Every config section and its keys, read off the dataclasses (algorithm: every built-in's keys)."""
    hints = typing.get_type_hints(ExperimentConfig)
    fields = {
        section.name: tuple(f.name for f in dataclasses.fields(hints[section.name]))
        for section in dataclasses.fields(ExperimentConfig)
    }
    keys = [k for name in BUILTIN_ALGORITHMS for k in algorithm_keys(name)]
    fields["algorithm"] = tuple(dict.fromkeys(keys))
    return fields


def is_field(name: str) -> bool:
    """A section.key of the config; any algorithm key qualifies (a user algorithm's own keys included),
    and is checked against the trial's algorithm when the grid points are built."""
    section, _, key = name.partition(".")
    if section == "algorithm":
        return key.isidentifier()
    return key in config_fields().get(section, ())


def set_fields(raw: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the nested config `raw` with dotted `values` set; switching algorithm.name keeps only the
    base's algorithm keys the new algorithm takes (validation is build_config's)."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    if "algorithm.name" in values:
        switch_algorithm(merged, values["algorithm.name"])
    for name, value in values.items():
        section, _, key = name.partition(".")
        merged[section] = {**(merged.get(section) or {}), key: value}
    return merged


def sweep_algorithms(spec: SweepSpec) -> tuple[str, ...]:
    """Every algorithm.name a sweep's trials can have: the base's, then the space's, in order of appearance."""
    names = [(spec.base.get("algorithm") or {}).get("name", "fedavg")]
    for dim in spec.space:
        if dim.joint:
            names += [option["algorithm.name"] for option in dim.values if "algorithm.name" in option]
        elif dim.name == "algorithm.name":
            names += list(dim.values)
    return tuple(dict.fromkeys(names))


def _drop_foreign_coefficients(raw: dict[str, Any], base_algorithm: str) -> dict[str, Any]:
    """Leave out algorithm keys the trial's algorithm does not take but a built-in or the base's algorithm does."""
    section = raw.get("algorithm")
    if not isinstance(section, dict):
        return raw
    try:
        own = set(algorithm_keys(section.get("name", "fedavg")))
        known = set(config_fields()["algorithm"]) | set(algorithm_keys(base_algorithm))
    except UserError:
        return raw  # a bad name: build_config reports it
    return {**raw, "algorithm": {k: v for k, v in section.items() if k in own or k not in known}}


def trial_config(
    base: Mapping[str, Any], fields: Mapping[str, Any], results_dir: str | None = None
) -> ExperimentConfig:
    """The experiment one trial runs: the base with the trial's field values (and its results folder) set."""
    extra = {"run.results_dir": results_dir} if results_dir is not None else {}
    raw = set_fields(base, {**fields, **extra})
    return build_config(_drop_foreign_coefficients(raw, (base.get("algorithm") or {}).get("name", "fedavg")))


def resolve_point(space: Sequence[Dimension], point: Mapping[str, Any]) -> dict[str, Any]:
    """Tune's sampled config ({dimension: value}) as {field: value}, joint dimensions expanded."""
    fields: dict[str, Any] = {}
    for dim in space:
        value = point[dim.name]
        fields.update(value if dim.joint else {dim.name: value})
    return fields


def point_label(fields: Mapping[str, Any], limit: int = 80) -> str:
    """A short, filesystem-safe name for a trial's values, e.g. "name=fedprox,mu=0.01,seed=1"."""
    parts = []
    for name, value in fields.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{name.rsplit('.', 1)[-1]}={text}")
    return re.sub(r"[^A-Za-z0-9_.=,+-]", "_", ",".join(parts))[:limit]


def _where(source: str) -> str:
    return f"sweep file '{source}'"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_args(source: str, name: str, spec: Any) -> tuple[str, list[Any]]:
    """Split `KIND [args]` text or a one-key mapping `{KIND: [args]}` into (kind, args)."""
    usage = f"'KIND [values]' or {{KIND: [values]}} with KIND one of {', '.join(KINDS)}"
    if isinstance(spec, str):
        match = _SPACE_TEXT.match(spec)
        if match is None:
            raise UserError(f"{_where(source)}: space.{name}={spec!r} is not allowed: {usage}")
        kind, rest = match.group(1), match.group(2)
        try:
            args = yaml.load(rest, Loader=SweepLoader) if rest.strip() else None  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            raise UserError(f"{_where(source)}: space.{name}={spec!r}: the values are not a YAML list") from None
    elif isinstance(spec, dict) and len(spec) == 1:
        kind, args = next(iter(spec.items()))
    else:
        raise UserError(f"{_where(source)}: space.{name}={spec!r} is not allowed: {usage}")
    if kind not in KINDS:
        raise UserError(f"{_where(source)}: space.{name}: unknown kind {kind!r}: allowed are {', '.join(KINDS)}")
    if not isinstance(args, list):
        raise UserError(
            f"{_where(source)}: space.{name}: {kind} needs a list of values, e.g. {kind} [a, b], got {args!r}"
        )
    return str(kind), args


def _check_range(source: str, name: str, kind: str, args: list[Any]) -> tuple[Any, ...]:
    bad = f"{_where(source)}: space.{name}={kind} {args!r} is not allowed"
    if len(args) != 2 or not all(_number(a) for a in args):
        raise UserError(f"{bad}: {kind} takes [low, high], two numbers")
    low, high = args
    if not low < high:
        raise UserError(f"{bad}: low must be below high")
    if kind == "loguniform" and low <= 0:
        raise UserError(f"{bad}: loguniform needs 0 < low")
    if kind == "randint" and not all(isinstance(a, int) for a in args):
        raise UserError(f"{bad}: randint takes two integers (high excluded)")
    return (low, high) if kind == "randint" else (float(low), float(high))


def _check_values(base: Mapping[str, Any], source: str, label: str, fields: Mapping[str, Any]) -> None:
    try:
        trial_config(base, fields)
    except UserError as exc:
        raise UserError(f"{_where(source)}: {label}: {exc}") from None


def parse_dimension(source: str, name: str, spec: Any, base: Mapping[str, Any]) -> Dimension:
    """One space entry, checked on its own against the base config (the message names the field)."""
    kind, args = _parse_args(source, name, spec)
    if is_field(name):
        if kind in ("grid", "choice"):
            if not args:
                raise UserError(f"{_where(source)}: space.{name}: {kind} needs at least one value")
            values: tuple[Any, ...] = tuple(args)
        else:
            values = _check_range(source, name, kind, args)
        dim = Dimension(name, typing.cast(Kind, kind), values)
        for value in dim.probe_values():
            _check_values(base, source, f"space.{name}", {name: value})
        return dim
    if "." in name:
        raise UserError(f"{_where(source)}: unknown config field 'space.{name}': {_known_fields_hint(name)}")
    if kind not in ("grid", "choice") or not args or not all(isinstance(a, dict) and a for a in args):
        raise UserError(
            f"{_where(source)}: space.{name}: '{name}' is not a config field (section.key), so it must be a grid or "
            "choice of mappings {section.key: value, ...} that set fields together"
        )
    for option in args:
        for field in option:
            if not (isinstance(field, str) and is_field(field)):
                hint = _known_fields_hint(str(field))
                raise UserError(f"{_where(source)}: unknown config field '{field}' in space.{name}: {hint}")
        _check_values(base, source, f"space.{name} option {option}", option)
    return Dimension(name, typing.cast(Kind, kind), tuple(dict(a) for a in args))


def _known_fields_hint(name: str) -> str:
    fields = config_fields()
    section = name.partition(".")[0]
    if section in fields:
        return f"allowed {section} keys are {', '.join(fields[section])}"
    return f"allowed sections are {', '.join(fields)}"


def _probe_points(space: Sequence[Dimension]) -> Iterable[dict[str, Any]]:
    """Every grid point (ranges at both ends), or one dimension varied at a time when that is too many."""
    choices = [[(d, v) for v in d.probe_values()] for d in space]
    if math.prod(len(c) for c in choices) <= MAX_PROBES:
        for combo in itertools.product(*choices):
            yield {d.name: v for d, v in combo}
        return
    first = {d.name: d.probe_values()[0] for d in space}
    for d in space:
        for v in d.probe_values():
            yield {**first, d.name: v}


def probe_configs(spec: SweepSpec) -> list[ExperimentConfig]:
    """The configs of the space's corner points: all grid points with ranges at their ends."""
    return [trial_config(spec.base, resolve_point(spec.space, p)) for p in _probe_points(spec.space)]


def _check_coefficients_are_used(source: str, spec: SweepSpec) -> None:
    """A swept algorithm key must belong to some algorithm the sweep runs, or every trial would drop it."""
    taken = {k for name in sweep_algorithms(spec) for k in _keys_or_none(name)}
    for field in spec.fields():
        section, _, key = field.partition(".")
        if section == "algorithm" and key not in taken:
            names = ", ".join(sweep_algorithms(spec))
            raise UserError(f"{_where(source)}: space.{field}: no algorithm of this sweep ({names}) takes {key}")


def _keys_or_none(name: str) -> tuple[str, ...]:
    try:
        return algorithm_keys(name)
    except UserError:
        return ()  # a bad algorithm name is reported by the grid-point check


def _check_points(source: str, base: Mapping[str, Any], space: Sequence[Dimension]) -> None:
    for point in _probe_points(space):
        fields = resolve_point(space, point)
        _check_values(base, source, f"the trial with {point_label(fields, limit=400)}", fields)


def _typed(source: str, key: str, value: Any, ok: bool, allowed: str) -> Any:
    if not ok:
        raise UserError(f"{_where(source)}: {key}={value!r} is not allowed: {allowed}")
    return value


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_scheduler(source: str, raw: Any, max_rounds: int) -> SchedulerSpec:
    """`fifo`, `asha`, or a mapping with name, metric, mode, grace_period and reduction_factor."""
    if raw is None:
        return SchedulerSpec()
    if isinstance(raw, str):
        raw = {"name": raw}
    _typed(source, "scheduler", raw, isinstance(raw, dict), "fifo, asha, or a mapping of " + ", ".join(SCHEDULER_KEYS))
    unknown = [key for key in raw if key not in SCHEDULER_KEYS]
    if unknown:
        raise UserError(
            f"{_where(source)}: unknown key 'scheduler.{unknown[0]}': allowed are {', '.join(SCHEDULER_KEYS)}"
        )
    d = SchedulerSpec()
    metrics = [m for m in METRIC_NAMES if m != "round"]
    checks: dict[str, Any] = {}
    for key, ok, allowed in (
        ("name", lambda v: v in ("fifo", "asha"), "fifo or asha"),
        ("metric", lambda v: v in metrics, "one of " + ", ".join(metrics)),
        ("mode", lambda v: v in ("max", "min"), "max or min"),
        ("grace_period", lambda v: _int(v) and 1 <= v <= max_rounds, f"an integer in [1, run.rounds={max_rounds}]"),
        ("reduction_factor", lambda v: _number(v) and v > 1, "a number > 1"),
    ):
        value = raw.get(key, getattr(d, key))
        _typed(source, f"scheduler.{key}", value, ok(value), allowed)
        checks[key] = value
    name, metric, mode, grace, rf = (checks[k] for k in SCHEDULER_KEYS)
    return SchedulerSpec(name=name, metric=metric, mode=mode, grace_period=grace, reduction_factor=float(rf))


def _base_config(source: str, raw: Any, base_dir: Path) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, str):
        path = Path(raw) if Path(raw).is_absolute() else base_dir / raw
        return read_yaml(path)
    return _typed(
        source,
        "base",
        raw,
        isinstance(raw, dict),
        "a config file path (relative to the sweep file) or a mapping of sections",
    )


def _fixed_values(source: str, overrides: Any, cli_overrides: Sequence[str]) -> dict[str, Any]:
    """The sweep file's `overrides` mapping, then the command line's section.key=value, as {field: value}."""
    overrides = overrides or {}
    _typed(source, "overrides", overrides, isinstance(overrides, dict), "a mapping {section.key: value}")
    values = dict(overrides)
    for text in cli_overrides:
        name, value = parse_override(text)
        values[name] = value
    for name in values:
        if not is_field(name):
            raise UserError(
                f"{_where(source)}: unknown config field '{name}' in the overrides: {_known_fields_hint(name)}"
            )
    return values


# The sweep file's scalar keys: (default, check, what is allowed).
_SCALARS: dict[str, tuple[Any, Callable[[Any], bool], str]] = {
    "num_samples": (1, lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "seed": (0, lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "trial_cpus": (1.0, lambda v: _number(v) and v > 0, "a number of CPUs > 0 (the trial driver and server)"),
    "max_concurrent_trials": (None, lambda v: v is None or (_int(v) and v >= 1), "null or an integer >= 1"),
    "ray_num_cpus": (None, lambda v: v is None or (_int(v) and v >= 1), "null or an integer >= 1"),
    "results_dir": (None, lambda v: v is None or (isinstance(v, str) and v != ""), "null or a path"),
}


def parse_sweep(raw: Mapping[str, Any], source: str, base_dir: Path, cli_overrides: Sequence[str] = ()) -> SweepSpec:
    """Validate a parsed sweep file completely; `base_dir` resolves a relative `base` path."""
    unknown = [key for key in raw if key not in SWEEP_KEYS]
    if unknown:
        raise UserError(f"{_where(source)}: unknown sweep key '{unknown[0]}': allowed are {', '.join(SWEEP_KEYS)}")
    base_raw = _base_config(source, raw.get("base"), base_dir)
    fixed = _fixed_values(source, raw.get("overrides"), cli_overrides)
    try:
        base = build_config(set_fields(base_raw, {**fixed, "run.results_dir": None})).to_dict()
    except UserError as exc:
        raise UserError(f"{_where(source)}: base config: {exc}") from None
    space_raw = raw.get("space")
    _typed(
        source,
        "space",
        space_raw,
        isinstance(space_raw, dict) and bool(space_raw),
        "a non-empty mapping {section.key: KIND [values]}",
    )
    space = tuple(parse_dimension(source, str(name), spec, base) for name, spec in space_raw.items())
    swept = [f for d in space for f in d.fields()]
    for name in fixed:
        if name in swept:
            raise UserError(f"{_where(source)}: {name} is both fixed by an override and swept by the space: keep one")
    twice = sorted({f for f in swept if swept.count(f) > 1})
    if twice:
        raise UserError(f"{_where(source)}: space sets {', '.join(twice)} in more than one dimension")
    _check_coefficients_are_used(source, SweepSpec(source, base, space))
    _check_points(source, base, space)
    max_rounds = max(c.run.rounds for c in probe_configs(SweepSpec(source, base, space)))
    values = {key: raw.get(key, default) for key, (default, _, _) in _SCALARS.items()}
    for key, value in values.items():
        _, ok, allowed = _SCALARS[key]
        _typed(source, key, value, ok(value), allowed)
    return SweepSpec(
        source=source,
        base=base,
        space=space,
        num_samples=values["num_samples"],
        seed=values["seed"],
        scheduler=parse_scheduler(source, raw.get("scheduler"), max_rounds),
        trial_cpus=float(values["trial_cpus"]),
        max_concurrent_trials=values["max_concurrent_trials"],
        ray_num_cpus=values["ray_num_cpus"],
        results_dir=values["results_dir"],
    )


def load_sweep(path: str | Path, cli_overrides: Sequence[str] = ()) -> SweepSpec:
    """Read and validate a sweep file; command-line overrides apply to the base config of every trial."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{_where(str(p))} does not exist")
    try:
        raw = yaml.load(p.read_text(), Loader=SweepLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{_where(str(p))} is not valid YAML{where}") from None
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{_where(str(p))} must be a mapping with at least a space, got {type(raw).__name__}")
    return parse_sweep(raw, str(p), p.parent, cli_overrides)


def sweep_to_dict(spec: SweepSpec) -> dict[str, Any]:
    """The spec as a self-contained sweep file (base inline), the form saved beside the results for --resume."""
    return {
        "base": dict(spec.base),
        "space": {d.name: {d.kind: list(d.values)} for d in spec.space},
        "num_samples": spec.num_samples,
        "seed": spec.seed,
        "scheduler": dataclasses.asdict(spec.scheduler),
        "trial_cpus": spec.trial_cpus,
        "max_concurrent_trials": spec.max_concurrent_trials,
        "ray_num_cpus": spec.ray_num_cpus,
        "results_dir": spec.results_dir,
    }


def dump_sweep(spec: SweepSpec) -> str:
    """The spec as YAML, in order (dimension order fixes Tune's trial order)."""
    return yaml.safe_dump(sweep_to_dict(spec), sort_keys=False)
