"""Tests for user code named by import path: data loaders, model builders and Algorithm subclasses."""

from __future__ import annotations

import textwrap
import uuid

import numpy as np
import pytest
from torch import nn

import fedref_ray
from fedref_ray.config import load_config
from fedref_ray.data.prepare import load_dataset
from fedref_ray.errors import UserError
from fedref_ray.models import build_model

LOADERS = '''
import numpy as np
import fedref_ray

def arrays():
    """4 train / 2 test samples of 3 float64 features, labels 0..2 -> num_classes 3."""
    return {
        "x_train": np.arange(12, dtype=np.float64).reshape(4, 3),
        "y_train": np.array([0, 1, 2, 1]),
        "x_test": np.ones((2, 3)),
        "y_test": np.array([1, 0]),
    }

def load():
    return arrays()

def load_dataset_arrays():
    a = arrays()
    return fedref_ray.DatasetArrays("mine", a["x_train"], a["y_train"], a["x_test"], a["y_test"], 3,
                                    np.array([7, 7, 9, 9]))

def load_raises():
    raise RuntimeError("cannot reach the bucket")

def load_raises_two_lines():
    raise RuntimeError("cannot reach the bucket\\nretry later")

def load_list():
    return [1, 2, 3]

def load_bad_labels():
    a = arrays()
    a["y_train"] = np.array([0, 1, -2, 1])
    return a

load_number = 5
'''

BUILDERS = """
import math
from torch import nn

def build(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))

def build_not_module(input_shape, num_classes):
    return "a string"

def build_raises(input_shape, num_classes):
    raise ValueError("needs images")

def build_raises_two_lines(input_shape, num_classes):
    raise ValueError("needs images\\nsee the docs")
"""

ALGORITHMS = '''
from dataclasses import dataclass
import fedref_ray
from fedref_ray import Algorithm, ServerUpdate

@dataclass(frozen=True)
class MyParams:
    beta: float = 0.9

    def __post_init__(self):
        if not 0 <= self.beta < 1:
            raise ValueError(f"beta={self.beta} is not allowed: a number in [0, 1)")

class MyAlgo(Algorithm):
    """A damped FedAvg: next = beta * aggregate + (1 - beta) * current."""
    name = "myalgo"
    Params = MyParams

    def server_update(self, model, state, aggregate):
        b = self.params.beta
        mixed = {k: (b * aggregate.model[k] + (1 - b) * model[k]).astype(model[k].dtype) for k in model}
        return ServerUpdate(mixed, state)

class NotAlgo:
    Params = MyParams

@dataclass
class LooseParams:
    beta: float = 0.9

class LooseAlgo(Algorithm):
    name = "loose"
    Params = LooseParams
'''


def write_module(tmp_path, monkeypatch, source: str) -> str:
    """Write `source` as a module with a name no other test uses, importable from tmp_path; return its name."""
    name = f"usermod_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def one_line_error(call, pattern: str) -> str:
    with pytest.raises(UserError, match=pattern) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- data loaders


def test_a_loader_returning_a_mapping_is_validated_like_arrays(tmp_path, monkeypatch) -> None:
    """mod:load gives 4x3 float32 train, 2x3 test, num_classes = 2 + 1 = 3, no client ids."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, LOADERS)

    # Execute
    data = load_dataset(load_config(None, [f"data.name={mod}:load"]).data)

    # Assert
    assert data.x_train.shape == (4, 3) and data.x_train.dtype == np.float32
    np.testing.assert_array_equal(data.x_train[3], [9.0, 10.0, 11.0])
    assert data.y_test.tolist() == [1, 0] and data.num_classes == 3
    assert data.train_client_ids is None


def test_a_loader_returning_dataset_arrays_keeps_its_client_ids(tmp_path, monkeypatch) -> None:
    """DatasetArrays with ids [7,7,9,9] comes back validated: float32 features, ids int64."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, LOADERS)

    # Execute
    data = load_dataset(load_config(None, [f"data.name={mod}:load_dataset_arrays"]).data)

    # Assert
    assert data.x_train.dtype == np.float32 and data.num_classes == 3
    assert data.train_client_ids.dtype == np.int64 and data.train_client_ids.tolist() == [7, 7, 9, 9]


def test_a_loader_module_that_does_not_exist_names_data_name() -> None:
    """An unknown module is a config-time error naming data.name and the module."""
    # Execute / Assert
    message = one_line_error(
        lambda: load_config(None, ["data.name=no_such_module_q7:load"]),
        r"^data\.name='no_such_module_q7:load': module 'no_such_module_q7' cannot be imported",
    )
    assert "No module named" in message


def test_a_module_whose_import_raises_is_one_line(tmp_path, monkeypatch) -> None:
    """A module raising a two-line error on import is reported with its first line only."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, 'raise ImportError("needs pandas 9\\ninstall it")\n')

    # Execute / Assert
    message = one_line_error(lambda: load_config(None, [f"data.name={mod}:load"]), r"^data\.name=.*cannot be imported")
    assert message.endswith("(needs pandas 9)")


def test_a_missing_loader_attribute_names_data_name(tmp_path, monkeypatch) -> None:
    """mod:nope is refused, naming the attribute."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, LOADERS)

    # Execute / Assert
    one_line_error(lambda: load_config(None, [f"data.name={mod}:nope"]), r"^data\.name=.*has no attribute 'nope'")


def test_a_loader_that_is_not_callable_names_data_name(tmp_path, monkeypatch) -> None:
    """mod:load_number (the int 5) is refused as not callable."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, LOADERS)

    # Execute / Assert
    one_line_error(lambda: load_config(None, [f"data.name={mod}:load_number"]), r"^data\.name=.* is not callable")


def test_a_loader_that_raises_names_data_name_and_the_error(tmp_path, monkeypatch) -> None:
    """RuntimeError('cannot reach the bucket') is reported with its type and text."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, LOADERS)
    cfg = load_config(None, [f"data.name={mod}:load_raises"])

    # Execute / Assert
    one_line_error(lambda: load_dataset(cfg.data), r"^data\.name=.* failed: RuntimeError: cannot reach the bucket$")


def test_a_loader_raising_a_two_line_error_is_still_one_line(tmp_path, monkeypatch) -> None:
    """A loader error 'cannot reach the bucket\\nretry later' gives a one-line UserError."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, LOADERS)
    cfg = load_config(None, [f"data.name={mod}:load_raises_two_lines"])

    # Execute / Assert
    one_line_error(lambda: load_dataset(cfg.data), r"^data\.name=.* failed: RuntimeError: cannot reach the bucket")


def test_a_loader_returning_a_list_names_data_name(tmp_path, monkeypatch) -> None:
    """A list is neither DatasetArrays nor a mapping."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, LOADERS)
    cfg = load_config(None, [f"data.name={mod}:load_list"])

    # Execute / Assert
    one_line_error(lambda: load_dataset(cfg.data), r"^data\.name=.* returned a list, not DatasetArrays or a mapping")


def test_a_loader_returning_bad_labels_is_validated(tmp_path, monkeypatch) -> None:
    """y_train with -2 is refused as for data.name=arrays, naming data.name and y_train."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, LOADERS)
    cfg = load_config(None, [f"data.name={mod}:load_bad_labels"])

    # Execute / Assert
    one_line_error(lambda: load_dataset(cfg.data), r"^data\.name=.*: y_train holds a negative label \(-2\)")


@pytest.mark.parametrize("spec", ["a:b:c", "1mod:x", "'mod:'", ":load", "mod-x:load"])
def test_a_malformed_import_path_names_data_name(spec) -> None:
    """Paths that are not 'package.module:attribute' are refused before any import."""
    # Execute / Assert
    one_line_error(lambda: load_config(None, [f"data.name={spec}"]), r"^data\.name=.* is not allowed: a built-in name")


def test_a_malformed_model_import_path_names_model_name() -> None:
    """model.name='a:b:c' is refused naming model.name."""
    # Execute / Assert
    one_line_error(lambda: load_config(None, ["model.name=a:b:c"]), r"^model\.name='a:b:c' is not allowed")


# ---------------------------------------------------------------- model builders


def test_a_user_model_builds_through_build_model(tmp_path, monkeypatch) -> None:
    """mod:build for input (1, 8, 8) and 10 classes is Flatten + Linear(64, 10): 64*10 + 10 = 650 parameters."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, BUILDERS)
    cfg = load_config(None, [f"model.name={mod}:build"])

    # Execute
    model = build_model(cfg.model.name, (1, 8, 8), 10, cfg.model.hidden)

    # Assert
    assert isinstance(model, nn.Module)
    assert sum(p.numel() for p in model.parameters()) == 650


def test_a_builder_returning_a_non_module_names_model_name(tmp_path, monkeypatch) -> None:
    """A builder returning a str is refused."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, BUILDERS)

    # Execute / Assert
    one_line_error(lambda: build_model(f"{mod}:build_not_module", (3,), 2),
                   r"^model\.name=.* returned a str, not a torch\.nn\.Module")  # fmt: skip


def test_a_builder_that_raises_names_model_name_and_the_shape(tmp_path, monkeypatch) -> None:
    """ValueError('needs images') for input (3,) and 2 classes is one line naming both."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, BUILDERS)

    # Execute / Assert
    one_line_error(lambda: build_model(f"{mod}:build_raises", (3,), 2),
                   r"^model\.name=.* failed for input shape \(3,\) and 2 classes: needs images$")  # fmt: skip


def test_a_builder_raising_a_two_line_error_is_still_one_line(tmp_path, monkeypatch) -> None:
    """ValueError('needs images\\nsee the docs') gives a one-line UserError."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, BUILDERS)

    # Execute / Assert
    one_line_error(lambda: build_model(f"{mod}:build_raises_two_lines", (3,), 2), r"^model\.name=.* needs images")


def test_model_hidden_with_a_user_model_names_model_hidden(tmp_path, monkeypatch) -> None:
    """model.hidden=64 is refused for a model given by import path."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, BUILDERS)

    # Execute / Assert
    one_line_error(lambda: load_config(None, [f"model.name={mod}:build", "model.hidden=64"]),
                   r"^model\.hidden=64 is not allowed: null for a model given by import path")  # fmt: skip


# ---------------------------------------------------------------- algorithms


def test_a_user_algorithm_takes_its_own_coefficient(tmp_path, monkeypatch) -> None:
    """algorithm.beta=0.5 lands in cfg.algorithm.params.beta; the default is 0.9."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, ALGORITHMS)

    # Execute
    given = load_config(None, [f"algorithm.name={mod}:MyAlgo", "algorithm.beta=0.5"])
    default = load_config(None, [f"algorithm.name={mod}:MyAlgo"])

    # Assert
    assert given.algorithm.params.beta == 0.5
    assert type(given.algorithm.params).__name__ == "MyParams"
    assert default.algorithm.params.beta == 0.9


def test_a_user_algorithm_coefficient_failing_its_check_names_it(tmp_path, monkeypatch) -> None:
    """beta=2 fails MyParams.__post_init__ and is reported as algorithm.beta."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, ALGORITHMS)

    # Execute / Assert
    one_line_error(lambda: load_config(None, [f"algorithm.name={mod}:MyAlgo", "algorithm.beta=2"]),
                   r"^algorithm\.beta=2\.0 is not allowed: a number in \[0, 1\)")  # fmt: skip


def test_an_unknown_user_algorithm_key_names_it_and_the_allowed_keys(tmp_path, monkeypatch) -> None:
    """algorithm.gamma is not a MyParams field: the message lists name, beta, clip_update_norm, max_update_ratio."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, ALGORITHMS)

    # Execute / Assert
    message = one_line_error(lambda: load_config(None, [f"algorithm.name={mod}:MyAlgo", "algorithm.gamma=1"]),
                             r"^unknown config key 'algorithm\.gamma'")  # fmt: skip
    assert message.endswith("takes name, beta, clip_update_norm, max_update_ratio")


def test_a_class_that_is_not_an_algorithm_is_refused(tmp_path, monkeypatch) -> None:
    """NotAlgo has Params but does not subclass fedref_ray.Algorithm."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, ALGORITHMS)

    # Execute / Assert
    one_line_error(lambda: load_config(None, [f"algorithm.name={mod}:NotAlgo"]),
                   r"^algorithm\.name=.* is not a subclass of fedref_ray\.Algorithm")  # fmt: skip


def test_an_algorithm_whose_params_is_not_frozen_is_refused(tmp_path, monkeypatch) -> None:
    """LooseAlgo's Params is a plain (mutable) dataclass."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, ALGORITHMS)

    # Execute / Assert
    one_line_error(lambda: load_config(None, [f"algorithm.name={mod}:LooseAlgo"]),
                   r"^algorithm\.name=.*: its Params must be a frozen dataclass")  # fmt: skip


BLOBS = '''
import numpy as np

def load():
    """Two Gaussian blobs in 2-D at (-2,-2) and (+2,+2): 200 train / 50 test."""
    rng = np.random.default_rng(0)
    def draw(n):
        y = np.arange(n) % 2
        return rng.normal(size=(n, 2)) + np.where(y[:, None] == 1, 2.0, -2.0), y
    (x_train, y_train), (x_test, y_test) = draw(200), draw(50)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
'''


def test_a_local_run_of_a_user_algorithm_with_user_data_and_model(tmp_path, monkeypatch) -> None:
    """2 rounds of MyAlgo (beta=0.5) on the user's blobs and Linear model run, and end elsewhere than FedAvg."""
    # Prepare
    mod = write_module(tmp_path, monkeypatch, ALGORITHMS + BUILDERS + BLOBS)
    common = [
        f"data.name={mod}:load", f"model.name={mod}:build", "engine.name=local", "partition.name=iid",
        "partition.num_clients=4", "run.clients_per_round=2", "run.rounds=2", "training.batch_size=16",
    ]  # fmt: skip

    # Execute
    mine = fedref_ray.run(None, [*common, f"algorithm.name={mod}:MyAlgo", "algorithm.beta=0.5",
                                 f"run.results_dir={tmp_path / 'mine'}"])  # fmt: skip
    plain = fedref_ray.run(None, [*common, "algorithm.name=fedavg", f"run.results_dir={tmp_path / 'plain'}"])

    # Assert
    assert len(mine.rounds) == 2
    assert 0.0 <= mine.summary["final_accuracy"] <= 1.0
    assert mine.summary["algorithm"] == f"{mod}:MyAlgo"
    assert set(mine.params) == {"1.weight", "1.bias"} and mine.params["1.weight"].shape == (2, 2)
    # Same seed, same clients: only the server half differs, so the final models must too.
    assert not np.allclose(mine.params["1.weight"], plain.params["1.weight"])
