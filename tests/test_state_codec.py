"""Tests for encode_state/decode_state: server state dataclasses to named arrays plus a JSON layout and back."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from fedref_ray.algorithms.base import NoState
from fedref_ray.algorithms.fedopt import FedOptState
from fedref_ray.algorithms.fedref import FedRefState
from fedref_ray.algorithms.scaffold import ScaffoldState
from fedref_ray.state_codec import decode_state, encode_state


def params(base: float) -> dict[str, np.ndarray]:
    """A two-tensor model: w = [[base, base+1]], b = [base+2]."""
    return {"w": np.array([[base, base + 1]], dtype=np.float32), "b": np.array([base + 2], dtype=np.float32)}


def round_trip(state):
    """Encode, push the layout through JSON text (as a checkpoint does) and decode."""
    arrays, layout = encode_state(state)
    text = json.dumps(layout)
    return arrays, layout, decode_state(type(state), arrays, json.loads(text))


def assert_params_equal(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)
    for k in expected:
        assert got[k].dtype == expected[k].dtype
        np.testing.assert_array_equal(got[k], expected[k])


@dataclass(frozen=True)
class Custom:
    vector: np.ndarray
    nothing: None
    count: int
    rate: float
    label: str
    empty: tuple


def test_fedref_state_round_trips_with_history_and_scalars() -> None:
    """History of 2 models, a reference, a previous reference and a loss come back equal; names as documented."""
    # Prepare
    state = FedRefState(history=(params(1.0), params(5.0)), reference=params(3.0), prev_reference=params(2.0),
                        last_loss=0.75)  # fmt: skip

    # Execute
    arrays, layout, back = round_trip(state)

    # Assert
    assert sorted(arrays) == sorted([
        "algorithm/history/0/w", "algorithm/history/0/b", "algorithm/history/1/w", "algorithm/history/1/b",
        "algorithm/reference/w", "algorithm/reference/b", "algorithm/prev_reference/w", "algorithm/prev_reference/b",
    ])  # fmt: skip
    assert layout["history"] == {"kind": "params_seq", "keys": [["w", "b"], ["w", "b"]]}
    assert layout["last_loss"] == {"kind": "json", "value": 0.75}
    assert isinstance(back.history, tuple) and len(back.history) == 2
    assert_params_equal(back.history[0], params(1.0))
    assert_params_equal(back.history[1], params(5.0))
    assert_params_equal(back.reference, params(3.0))
    assert_params_equal(back.prev_reference, params(2.0))
    assert back.last_loss == 0.75


def test_fedref_initial_state_keeps_its_nones() -> None:
    """prev_reference=None and last_loss=None are JSON values, not arrays, and decode to None."""
    # Prepare
    state = FedRefState(history=(params(0.0),), reference=params(0.0))

    # Execute
    arrays, layout, back = round_trip(state)

    # Assert
    assert layout["prev_reference"] == {"kind": "json", "value": None}
    assert not any(k.startswith("algorithm/prev_reference") for k in arrays)
    assert back.prev_reference is None and back.last_loss is None
    assert_params_equal(back.history[0], params(0.0))


def test_fedopt_state_round_trips_float64_moments() -> None:
    """m and v (float64) keep dtype and values under algorithm/m/... and algorithm/v/..."""
    # Prepare
    m = {k: v.astype(np.float64) * 0.5 for k, v in params(1.0).items()}  # w=[[0.5, 1.0]], b=[1.5]
    v = {k: x.astype(np.float64) ** 2 for k, x in params(1.0).items()}  # w=[[1, 4]], b=[9]
    state = FedOptState(m=m, v=v)

    # Execute
    arrays, _, back = round_trip(state)

    # Assert
    assert sorted(arrays) == ["algorithm/m/b", "algorithm/m/w", "algorithm/v/b", "algorithm/v/w"]
    np.testing.assert_array_equal(arrays["algorithm/m/w"], np.array([[0.5, 1.0]]))
    assert_params_equal(back.m, m)
    assert_params_equal(back.v, v)
    np.testing.assert_array_equal(back.v["b"], np.array([9.0]))


def test_scaffold_state_round_trips_and_honours_the_prefix() -> None:
    """With prefix 'server' the control variate is stored as server/c/w, server/c/b."""
    # Prepare
    state = ScaffoldState(c=params(-1.0))

    # Execute
    arrays, layout = encode_state(state, prefix="server")
    back = decode_state(ScaffoldState, arrays, json.loads(json.dumps(layout)), prefix="server")

    # Assert
    assert sorted(arrays) == ["server/c/b", "server/c/w"]
    assert layout == {"c": {"kind": "params", "keys": ["w", "b"]}}
    assert_params_equal(back.c, params(-1.0))


def test_no_state_encodes_to_nothing_and_back() -> None:
    """NoState has no fields: no arrays, an empty layout, and decodes to NoState()."""
    # Execute
    arrays, layout, back = round_trip(NoState())

    # Assert
    assert arrays == {} and layout == {}
    assert back == NoState()


def test_a_custom_dataclass_of_array_none_int_float_str_and_empty_tuple_round_trips() -> None:
    """Each field kind comes back with its value and type."""
    # Prepare
    state = Custom(vector=np.arange(4, dtype=np.int32), nothing=None, count=7, rate=0.25, label="x", empty=())

    # Execute
    arrays, layout, back = round_trip(state)

    # Assert
    assert list(arrays) == ["algorithm/vector"]
    assert layout["vector"] == {"kind": "array"} and layout["count"] == {"kind": "json", "value": 7}
    np.testing.assert_array_equal(back.vector, np.array([0, 1, 2, 3], dtype=np.int32))
    assert back.vector.dtype == np.int32
    assert back.nothing is None
    assert back.count == 7 and type(back.count) is int
    assert back.rate == 0.25 and back.label == "x"
    assert back.empty == ()


@pytest.mark.parametrize("bad", [{1, 2}, object(), (1.0, 2.0)], ids=["set", "object", "tuple-of-floats"])
def test_an_unsupported_field_type_is_a_type_error_naming_the_field(bad) -> None:
    """Custom.nothing holding a set, an object or a tuple of floats names 'Custom.nothing'."""
    # Prepare
    state = Custom(vector=np.zeros(1), nothing=bad, count=0, rate=0.0, label="", empty=())

    # Execute / Assert
    with pytest.raises(TypeError, match=r"Custom\.nothing is a "):
        encode_state(state)


def test_a_missing_array_on_decode_is_a_key_error() -> None:
    """Dropping algorithm/history/1/b from the arrays makes decode raise KeyError naming it."""
    # Prepare
    arrays, layout = encode_state(FedRefState(history=(params(1.0), params(2.0)), reference=params(3.0)))
    del arrays["algorithm/history/1/b"]

    # Execute / Assert
    with pytest.raises(KeyError, match="algorithm/history/1/b"):
        decode_state(FedRefState, arrays, layout)
