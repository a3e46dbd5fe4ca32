"""Experiment configuration: frozen dataclasses, validated where they are built.

One experiment is one YAML file with the sections below; dotted overrides
(`algorithm.lam=0.1`) are applied on top. Every user mistake becomes a
`UserError` naming the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from fedref_ray.errors import UserError
from fedref_ray.imports import is_import_path, load_object
from fedref_ray.paths import home_as_tilde

DATA_NEEDING_ROOT = ("mnist", "fashion_mnist", "cifar10", "cinic10", "femnist")
BUILTIN_DATA = ("synthetic", "digits", "mnist5k", "arrays", *DATA_NEEDING_ROOT)
DATA_WITH_CLIENT_IDS = ("synthetic", "femnist", "arrays")
BUILTIN_MODELS = ("logreg", "mlp", "femnist_cnn", "cifar_cnn", "resnet18")


def _fail(path: str, value: Any, allowed: str) -> typing.NoReturn:
    raise UserError(f"{path}={value!r} is not allowed: {allowed}")


def _check(ok: bool, path: str, value: Any, allowed: str) -> None:
    if not ok:
        _fail(path, value, allowed)


def _check_name(path: str, name: str, builtins: tuple[str, ...], kind: str) -> None:
    """A built-in name, or an import path whose object exists and is callable."""
    if not is_import_path(name):
        _check(name in builtins, path, name, f"one of {', '.join(builtins)}, or an import path 'package.module:{kind}'")
        return
    if not callable(load_object(path, name)):
        raise UserError(f"{path}={name!r} is not callable: it must name a {kind}")


@dataclass(frozen=True)
class DataConfig:
    """Which dataset to load, and the dataset's own parameters.

    `name` is a built-in source, `arrays` (an .npz file or a folder of Parquet files at `path`),
    or the import path "package.module:function" of a loader called with no arguments.
    """

    name: str = "mnist5k"
    root: str | None = None
    path: str | None = None
    seed: int = 0
    num_train: int = 4000
    num_test: int = 1000
    test_fraction: float = 0.2
    synthetic_alpha: float = 1.0
    synthetic_beta: float = 1.0
    synthetic_users: int = 100
    synthetic_max_samples: int | None = None
    synthetic_iid: bool = False

    def __post_init__(self) -> None:
        _check_name("data.name", self.name, BUILTIN_DATA, "function")
        if self.name == "arrays":
            _check(self.path is not None, "data.path", self.path, "data.name=arrays reads it: an .npz file or a folder")
            _check(Path(str(self.path)).expanduser().exists(), "data.path", self.path, "an existing file or folder")
        else:
            _check(self.path is None, "data.path", self.path, "null unless data.name=arrays")
        if self.name in DATA_NEEDING_ROOT:
            _check(
                self.root is not None,
                "data.root",
                self.root,
                f"data.name={self.name} reads a local copy: set data.root",
            )
            _check(Path(str(self.root)).expanduser().is_dir(), "data.root", self.root, "an existing directory")
        _check(self.seed >= 0, "data.seed", self.seed, "an integer >= 0")
        _check(self.num_train >= 1, "data.num_train", self.num_train, "an integer >= 1")
        _check(self.num_test >= 1, "data.num_test", self.num_test, "an integer >= 1")
        _check(0 < self.test_fraction < 1, "data.test_fraction", self.test_fraction, "a number in (0, 1)")
        _check(self.synthetic_alpha >= 0, "data.synthetic_alpha", self.synthetic_alpha, "a number >= 0")
        _check(self.synthetic_beta >= 0, "data.synthetic_beta", self.synthetic_beta, "a number >= 0")
        _check(self.synthetic_users >= 1, "data.synthetic_users", self.synthetic_users, "an integer >= 1")
        _check(
            self.synthetic_max_samples is None or self.synthetic_max_samples >= 2,
            "data.synthetic_max_samples",
            self.synthetic_max_samples,
            "null or an integer >= 2",
        )


@dataclass(frozen=True)
class PartitionConfig:
    """How the training set is split over clients (the data heterogeneity)."""

    name: Literal["iid", "dirichlet", "shards", "quantity", "natural"] = "dirichlet"
    num_clients: int | None = 50
    alpha: float = 0.5
    classes_per_client: int = 2
    quantity_exponent: float = 1.5

    def __post_init__(self) -> None:
        _check(
            self.num_clients is None or self.num_clients >= 1,
            "partition.num_clients",
            self.num_clients,
            "an integer >= 1 (or null with partition.name=natural)",
        )
        _check(
            self.num_clients is not None or self.name == "natural",
            "partition.num_clients",
            self.num_clients,
            "an integer >= 1; null only with partition.name=natural",
        )
        _check(self.alpha > 0, "partition.alpha", self.alpha, "a number > 0")
        _check(self.classes_per_client >= 1, "partition.classes_per_client", self.classes_per_client, "an integer >= 1")
        _check(self.quantity_exponent > 0, "partition.quantity_exponent", self.quantity_exponent, "a number > 0")


@dataclass(frozen=True)
class ModelConfig:
    """Which network to train: a built-in name or "package.module:function" ((input_shape, num_classes) -> Module).

    `hidden` overrides a built-in model's hidden width.
    """

    name: str = "femnist_cnn"
    hidden: int | None = None

    def __post_init__(self) -> None:
        _check_name("model.name", self.name, BUILTIN_MODELS, "function")
        _check(self.hidden is None or self.hidden >= 1, "model.hidden", self.hidden, "null or an integer >= 1")
        _check(
            self.hidden is None or not is_import_path(self.name),
            "model.hidden",
            self.hidden,
            "null for a model given by import path (it builds itself)",
        )


ALGORITHM_COMMON_KEYS = ("name", "clip_update_norm", "max_update_ratio")


@dataclass(frozen=True)
class AlgorithmConfig:
    """The federated algorithm, its own coefficients (`params`, the algorithm's frozen dataclass) and the update clip.

    In YAML the section is flat (`name`, the algorithm's own keys, `clip_update_norm`); a key the
    named algorithm does not take is an error naming its allowed keys.
    """

    name: str = "fedavg"
    params: Any = None
    clip_update_norm: float | None = None
    max_update_ratio: float | None = 1000.0  # reject an update longer than this times max(||global model||, 1)

    def __post_init__(self) -> None:
        from fedref_ray.algorithms.registry import algorithm_class

        cls = algorithm_class(self.name)
        if self.params is None:
            object.__setattr__(self, "params", build_dataclass(cls.Params, {}, "algorithm", self.name))
        elif type(self.params) is not cls.Params:
            raise UserError(
                f"algorithm.params is a {type(self.params).__name__}; algorithm.name={self.name} takes "
                f"{cls.Params.__name__}"
            )
        _check(
            self.clip_update_norm is None or self.clip_update_norm > 0,
            "algorithm.clip_update_norm",
            self.clip_update_norm,
            "null or a number > 0",
        )
        _check(
            self.max_update_ratio is None or self.max_update_ratio > 0,
            "algorithm.max_update_ratio",
            self.max_update_ratio,
            "null (no bound) or a number > 0",
        )

    def to_dict(self) -> dict[str, Any]:
        """The flat YAML form: name, the algorithm's own keys, then the keys every algorithm shares."""
        common = {"clip_update_norm": self.clip_update_norm, "max_update_ratio": self.max_update_ratio}
        return {"name": self.name, **dataclasses.asdict(self.params), **common}


@dataclass(frozen=True)
class TrainingConfig:
    """Local training on each client: minibatch SGD."""

    local_epochs: int = 1
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.0
    weight_decay: float = 0.0
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        _check(self.local_epochs >= 1, "training.local_epochs", self.local_epochs, "an integer >= 1")
        _check(self.batch_size >= 1, "training.batch_size", self.batch_size, "an integer >= 1")
        _check(self.lr > 0, "training.lr", self.lr, "a number > 0")
        _check(0 <= self.momentum < 1, "training.momentum", self.momentum, "a number in [0, 1)")
        _check(self.weight_decay >= 0, "training.weight_decay", self.weight_decay, "a number >= 0")
        _check(self.eval_batch_size >= 1, "training.eval_batch_size", self.eval_batch_size, "an integer >= 1")


@dataclass(frozen=True)
class SystemConfig:
    """System heterogeneity: client speed, bandwidth, availability, deadline and faults.

    Speeds are in samples per second and bandwidths in MB/s, each drawn once per
    client from a log-normal with the given median and sigma (sigma 0 = all equal).
    A faulty client's update is replaced by the initial model (stale), gets Gaussian
    noise (noise), or turns to NaN (nan: a diverged client, rejected before aggregation).
    """

    speed_median: float = 200.0
    speed_sigma: float = 0.0
    bandwidth_median: float = 10.0
    bandwidth_sigma: float = 0.0
    availability: float = 1.0
    deadline_s: float | None = None
    deadline_policy: Literal["drop", "partial"] = "drop"
    faulty_fraction: float = 0.0
    fault_kind: Literal["stale", "noise", "nan"] = "stale"
    fault_noise_std: float = 1.0
    # FedProx paper's stragglers (Li et al. 2020, Sec. 5.2): this fraction of each round's
    # responding clients (rounded, as their code does) runs a uniform number of epochs in
    # [1, E-1]; `drop` discards them (FedAvg), `partial` aggregates their partial work (FedProx).
    straggler_fraction: float = 0.0
    straggler_policy: Literal["drop", "partial"] = "drop"

    def __post_init__(self) -> None:
        _check(
            0 <= self.straggler_fraction <= 1,
            "system.straggler_fraction",
            self.straggler_fraction,
            "a number in [0, 1]",
        )
        _check(
            self.straggler_policy in ("drop", "partial"),
            "system.straggler_policy",
            self.straggler_policy,
            "drop or partial",
        )
        _check(self.speed_median > 0, "system.speed_median", self.speed_median, "a number > 0")
        _check(self.speed_sigma >= 0, "system.speed_sigma", self.speed_sigma, "a number >= 0")
        _check(self.bandwidth_median > 0, "system.bandwidth_median", self.bandwidth_median, "a number > 0")
        _check(self.bandwidth_sigma >= 0, "system.bandwidth_sigma", self.bandwidth_sigma, "a number >= 0")
        _check(0 < self.availability <= 1, "system.availability", self.availability, "a number in (0, 1]")
        _check(self.deadline_s is None or self.deadline_s > 0, "system.deadline_s", self.deadline_s, "null or > 0")
        _check(0 <= self.faulty_fraction <= 1, "system.faulty_fraction", self.faulty_fraction, "a number in [0, 1]")
        _check(self.fault_noise_std >= 0, "system.fault_noise_std", self.fault_noise_std, "a number >= 0")


@dataclass(frozen=True)
class EngineConfig:
    """Where clients are trained: in this process (`local`) or on a pool of Ray actors (`ray`)."""

    name: Literal["local", "ray"] = "ray"
    num_workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    address: str = ""
    placement: Literal["pack", "spread"] = "pack"
    torch_threads: int | None = None
    timeout_s: float = 600.0
    dashboard: bool = False
    dashboard_host: str = "127.0.0.1"
    dashboard_public: bool = False  # the explicit opt-in a non-loopback dashboard_host needs

    def __post_init__(self) -> None:
        if not (self.dashboard_public or _is_loopback(self.dashboard_host)):
            raise UserError(
                f"engine.dashboard_host={self.dashboard_host!r} would open Ray's dashboard beyond this machine, and "
                "the dashboard has no authentication here (anyone who reaches it can run jobs as you): keep "
                "127.0.0.1, or set engine.dashboard_public=true as well to accept that"
            )
        _check(self.num_workers >= 1, "engine.num_workers", self.num_workers, "an integer >= 1")
        _check(self.cpus_per_worker > 0, "engine.cpus_per_worker", self.cpus_per_worker, "a number > 0")
        _check(self.gpus_per_worker >= 0, "engine.gpus_per_worker", self.gpus_per_worker, "a number >= 0")
        _check(
            self.gpus_per_worker <= 1 or float(self.gpus_per_worker).is_integer(),
            "engine.gpus_per_worker",
            self.gpus_per_worker,
            "a fraction in [0, 1] or a whole number of GPUs",
        )
        _check(
            self.torch_threads is None or self.torch_threads >= 1,
            "engine.torch_threads",
            self.torch_threads,
            "null or an integer >= 1",
        )
        _check(
            1 <= self.timeout_s <= MAX_TIMEOUT_S,
            "engine.timeout_s",
            self.timeout_s,
            f"a number of seconds in [1, {MAX_TIMEOUT_S}] (one second to a week)",
        )


MAX_TIMEOUT_S = 7 * 24 * 3600


def _is_loopback(host: str) -> bool:
    """localhost or a loopback IP address (127.0.0.0/8, ::1): reachable from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class RunConfig:
    """The round protocol, seed, stopping target and where results go."""

    seed: int = 0
    rounds: int = 30
    clients_per_round: int = 10
    target_accuracy: float = 0.8
    results_dir: str | None = None
    checkpoint_every: int = 0
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        _check(self.seed >= 0, "run.seed", self.seed, "an integer >= 0")
        _check(self.rounds >= 1, "run.rounds", self.rounds, "an integer >= 1")
        _check(self.clients_per_round >= 1, "run.clients_per_round", self.clients_per_round, "an integer >= 1")
        _check(0 < self.target_accuracy <= 1, "run.target_accuracy", self.target_accuracy, "a number in (0, 1]")
        _check(
            self.results_dir != "",
            "run.results_dir",
            self.results_dir,
            "a path, or null for results/<algorithm>-<time>",
        )
        _check(self.checkpoint_every >= 0, "run.checkpoint_every", self.checkpoint_every, "an integer >= 0 (0 = off)")
        _check(self.keep_checkpoints >= 1, "run.keep_checkpoints", self.keep_checkpoints, "an integer >= 1")


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: every section, with cross-section checks."""

    data: DataConfig = field(default_factory=DataConfig)
    partition: PartitionConfig = field(default_factory=PartitionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    system: SystemConfig = field(default_factory=SystemConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        k = self.partition.num_clients
        _check(
            k is None or self.run.clients_per_round <= k,
            "run.clients_per_round",
            self.run.clients_per_round,
            f"at most partition.num_clients={k}",
        )
        if self.partition.name == "natural":
            _check(
                self.data.name in DATA_WITH_CLIENT_IDS or is_import_path(self.data.name),
                "partition.name",
                "natural",
                f"natural needs a dataset with client ids ({', '.join(DATA_WITH_CLIENT_IDS)}, or your loader's)",
            )

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data, for YAML and Parquet columns (the algorithm section flat)."""
        out = {f.name: dataclasses.asdict(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["algorithm"] = self.algorithm.to_dict()
        return out


_SECTION_TYPES = {
    "data": DataConfig,
    "partition": PartitionConfig,
    "model": ModelConfig,
    "algorithm": AlgorithmConfig,
    "training": TrainingConfig,
    "system": SystemConfig,
    "engine": EngineConfig,
    "run": RunConfig,
}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in typing.get_args(tp))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce(path: str, value: Any, tp: Any) -> Any:
    """Return `value` checked against the type hint `tp` (ints are accepted as floats)."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value in typing.get_args(tp) and isinstance(value, str):
            return value
        _fail(path, value, _describe(tp))
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(path, value, arg)
            except UserError:
                continue
        _fail(path, value, _describe(tp))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as text
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                _fail(path, value, "a finite number")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    _fail(path, value, _describe(tp))


def build_dataclass(cls: type, values: Any, prefix: str, owner: str | None = None) -> Any:
    """Build the frozen dataclass `cls` from a mapping, every value checked against its type hint.

    Errors name `prefix.key`; a ValueError from the dataclass's own checks becomes a UserError too
    (naming `owner`, e.g. the algorithm, when its message does not start with the key).
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        _fail(prefix, values, f"a mapping of {prefix} fields")
    hints = typing.get_type_hints(cls)
    allowed = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in allowed:
            raise UserError(f"unknown config key '{prefix}.{key}': allowed keys are {', '.join(allowed)}")
        kwargs[key] = _coerce(f"{prefix}.{key}", value, hints[key])
    try:
        return cls(**kwargs)
    except ValueError as exc:
        text = str(exc)
        if "=" in text.partition(" ")[0]:
            raise UserError(f"{prefix}.{text}") from None
        raise UserError(f"{prefix} ({owner or cls.__name__}): {text}") from None


def _build_algorithm(values: Any) -> AlgorithmConfig:
    """The flat algorithm section: name and clip_update_norm are common, the rest is the algorithm's Params."""
    from fedref_ray.algorithms.registry import algorithm_class

    if values is None:
        values = {}
    if not isinstance(values, dict):
        _fail("algorithm", values, "a mapping of algorithm fields")
    name = values.get("name", "fedavg")
    if not isinstance(name, str):
        _fail("algorithm.name", name, "a built-in algorithm name or an import path 'package.module:Class'")
    cls = algorithm_class(name)
    own = {k: v for k, v in values.items() if k not in ALGORITHM_COMMON_KEYS}
    allowed = ["name", *(f.name for f in dataclasses.fields(cls.Params)), *ALGORITHM_COMMON_KEYS[1:]]
    for key in own:
        if key not in allowed:
            raise UserError(f"unknown config key 'algorithm.{key}': algorithm.name={name} takes {', '.join(allowed)}")
    common = {k: _coerce(f"algorithm.{k}", values[k], float | None) for k in ALGORITHM_COMMON_KEYS[1:] if k in values}
    return AlgorithmConfig(name=name, params=build_dataclass(cls.Params, own, "algorithm", name), **common)


def algorithm_keys(name: str) -> tuple[str, ...]:
    """Every key an algorithm section naming `name` may hold."""
    from fedref_ray.algorithms.registry import parameter_keys

    return (*ALGORITHM_COMMON_KEYS, *parameter_keys(name))


def retarget_algorithm(section: Any, name: Any) -> Any:
    """The algorithm section with `name` set and only the keys that algorithm takes kept.

    Used when an override or a sweep switches algorithms: coefficients of the previous algorithm
    that the new one also has carry over, the others are dropped. A bad name is left for
    validation to report.
    """
    section = {} if section is None else section
    if not isinstance(section, dict) or not isinstance(name, str):
        return section
    try:
        keys = algorithm_keys(name)
    except UserError:
        return {**section, "name": name}
    return {**{k: v for k, v in section.items() if k in keys}, "name": name}


def switch_algorithm(raw: dict[str, Any], name: Any) -> None:
    """Point the nested config `raw` at algorithm `name` in place; when that changes the algorithm, keep only the
    section's keys the new algorithm takes (the file's coefficients apply only where they fit)."""
    section = raw.get("algorithm")
    if isinstance(section, (dict, type(None))) and name != (section or {}).get("name", "fedavg"):
        raw["algorithm"] = retarget_algorithm(section, name)


def _build_section(name: str, values: Any) -> Any:
    if name == "algorithm":
        return _build_algorithm(values)
    return build_dataclass(_SECTION_TYPES[name], values, name)


def build_config(raw: dict[str, Any]) -> ExperimentConfig:
    """Map a nested dict (parsed YAML) onto the dataclasses, validating everything."""
    if not isinstance(raw, dict):
        raise UserError(f"config must be a mapping of sections ({', '.join(_SECTION_TYPES)}), got {type(raw).__name__}")
    for key in raw:
        if key not in _SECTION_TYPES:
            raise UserError(f"unknown config section '{key}': allowed sections are {', '.join(_SECTION_TYPES)}")
    sections = {name: _build_section(name, raw.get(name)) for name in _SECTION_TYPES}
    return ExperimentConfig(**sections)


def parse_override(text: str) -> tuple[str, Any]:
    """Split `section.key=value`; the value is parsed as YAML (so `0.1`, `null`, `true` work)."""
    if "=" not in text:
        raise UserError(f"override '{text}' must look like section.key=value")
    path, _, raw_value = text.partition("=")
    parts = path.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise UserError(f"override '{text}': the key must be section.key, e.g. algorithm.mu=0.01")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() != "" else ""
    except yaml.YAMLError:
        value = raw_value
    return path.strip(), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `raw` with dotted overrides applied (validation happens in build_config)."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    parsed = [(text, *parse_override(text)) for text in overrides]
    names = [value for _, path, value in parsed if path == "algorithm.name"]
    if names:
        switch_algorithm(merged, names[-1])
    for text, path, value in parsed:
        section, key = path.split(".")
        if section not in _SECTION_TYPES:
            raise UserError(
                f"unknown config section '{section}' in override '{text}': allowed are {', '.join(_SECTION_TYPES)}"
            )
        current = merged.get(section) or {}
        if not isinstance(current, dict):
            _fail(section, current, f"a mapping of {section} fields")
        merged[section] = {**current, key: value}
    return merged


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a config YAML file (safe loader only), with clear errors for missing, binary or malformed files.

    A key given twice in one mapping is refused: PyYAML would silently keep the last.
    """
    from fedref_ray.strict_yaml import DuplicateKeyError, load_strict

    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file '{p}' does not exist")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UserError(f"config file '{p}' cannot be read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise UserError(f"config file '{p}' is not a text file (want UTF-8 YAML)")
    try:
        raw = load_strict(text)
    except DuplicateKeyError as exc:
        raise UserError(f"config file '{p}': {exc}; give each key once") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"config file '{p}' is not valid YAML{where}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"config file '{p}' must hold a mapping of sections, got {type(raw).__name__}")
    return raw


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Load a YAML experiment (or the defaults when `path` is None) and apply overrides."""
    raw = read_yaml(path) if path is not None else {}
    return build_config(apply_overrides(raw, list(overrides)))


def _tidy_paths(value: Any) -> Any:
    """Home paths as ~, in every string of a nested config dict (the form config.yaml stores)."""
    if isinstance(value, dict):
        return {k: _tidy_paths(v) for k, v in value.items()}
    return home_as_tilde(value)


def config_to_yaml(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML, the form written into every results folder (home paths as ~)."""
    return yaml.safe_dump(_tidy_paths(cfg.to_dict()), sort_keys=False)


def config_fingerprint(cfg: ExperimentConfig) -> str:
    """A hash of what determines a run's results: every field but where it runs and where it writes.

    Paths are hashed as config.yaml stores them (home as ~), so a resumed run matches its folder.
    """
    import hashlib
    import json

    data = _tidy_paths(cfg.to_dict())
    data.pop("engine")
    data["run"].pop("results_dir")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def load_results_config(results_dir: str | Path) -> ExperimentConfig:
    """The config a results folder was written with (its config.yaml), pointed at that folder."""
    path = Path(results_dir) / "config.yaml"
    if not path.is_file():
        raise UserError(f"'{results_dir}' is not a results folder: '{path}' is missing")
    raw = read_yaml(path)
    cfg = build_config(raw)
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, results_dir=str(results_dir)))
