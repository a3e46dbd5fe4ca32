"""Any algorithm's server state (a dataclass of arrays, parameter dicts, sequences of them and scalars) as
named arrays plus a JSON layout, and back: how checkpoints store state without knowing its fields.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


def encode_state(state: Any, prefix: str = "algorithm") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays named `prefix/field/...`, layout) for the dataclass `state`; other value types are a TypeError."""
    arrays: dict[str, np.ndarray] = {}
    layout: dict[str, Any] = {}
    for f in dataclasses.fields(state):
        value, key = getattr(state, f.name), f"{prefix}/{f.name}"
        if isinstance(value, np.ndarray):
            arrays[key] = value
            layout[f.name] = {"kind": "array"}
        elif isinstance(value, dict):
            arrays.update(_params(key, value))
            layout[f.name] = {"kind": "params", "keys": list(value)}
        elif isinstance(value, (tuple, list)) and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                arrays.update(_params(f"{key}/{i}", item))
            layout[f.name] = {"kind": "params_seq", "keys": [list(v) for v in value]}
        elif value is None or isinstance(value, (bool, int, float, str)):
            layout[f.name] = {"kind": "json", "value": value}
        else:
            raise TypeError(
                f"{type(state).__name__}.{f.name} is a {type(value).__name__}; server state fields must be arrays, "
                "dicts of arrays, sequences of such dicts, or scalars"
            )
    return arrays, layout


def decode_state(cls: type, arrays: dict[str, np.ndarray], layout: dict[str, Any], prefix: str = "algorithm") -> Any:
    """The inverse of `encode_state` for the dataclass `cls`; a KeyError when an array is missing."""
    values: dict[str, Any] = {}
    for name, spec in layout.items():
        key = f"{prefix}/{name}"
        kind = spec["kind"]
        if kind == "array":
            values[name] = arrays[key]
        elif kind == "params":
            values[name] = {k: arrays[f"{key}/{k}"] for k in spec["keys"]}
        elif kind == "params_seq":
            values[name] = tuple({k: arrays[f"{key}/{i}/{k}"] for k in keys} for i, keys in enumerate(spec["keys"]))
        else:
            values[name] = spec["value"]
    return cls(**values)


def _params(key: str, params: dict[str, Any]) -> dict[str, np.ndarray]:
    return {f"{key}/{k}": np.asarray(v) for k, v in params.items()}
