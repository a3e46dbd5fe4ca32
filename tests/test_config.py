"""Tests for the experiment config: defaults, YAML + dotted overrides, and one-line UserErrors naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedref_ray.algorithms import NoParams
from fedref_ray.algorithms.fedprox import FedProxParams
from fedref_ray.algorithms.fedref import FedRefParams
from fedref_ray.config import (
    AlgorithmConfig,
    ExperimentConfig,
    apply_overrides,
    build_config,
    config_to_yaml,
    load_config,
    parse_override,
)
from fedref_ray.errors import UserError


def _raises_naming(field: str, call: object, *args: object) -> str:
    with pytest.raises(UserError) as info:
        call(*args)  # type: ignore[operator]
    message = str(info.value)
    assert field in message, message
    assert "\n" not in message
    return message


def test_defaults_build() -> None:
    # Prepare / Execute
    cfg = load_config(None)
    # Assert
    assert cfg == ExperimentConfig()
    assert cfg.algorithm.name == "fedavg" and cfg.data.name == "mnist5k" and cfg.partition.num_clients == 50
    assert cfg.algorithm.params == NoParams() and cfg.run.results_dir is None


def test_yaml_and_overrides_map_onto_the_dataclasses(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "exp.yaml"
    path.write_text(
        "algorithm:\n  name: fedref\n  lam: 1\n  rho: 4\n  gate_delta: 0.5\n"
        "training:\n  lr: 0.1\n  batch_size: 16\n"
        "system:\n  deadline_s: null\n"
        "model:\n"  # an empty section means its defaults
        "data:\n  name: synthetic\n  synthetic_iid: true\n"
    )
    # Execute
    cfg = load_config(
        path, ["algorithm.gate_delta=null", "training.lr=1", "run.results_dir=out/x", "algorithm.mu=0.01"]
    )
    # Assert
    p = cfg.algorithm.params
    assert cfg.algorithm.name == "fedref" and p.rho == 4
    assert p.lam == 1.0 and isinstance(p.lam, float)
    assert cfg.training.lr == 1.0 and isinstance(cfg.training.lr, float)  # the override wins over the file
    assert cfg.training.batch_size == 16
    assert p.gate_delta is None and p.mu == 0.01
    assert cfg.system.deadline_s is None and cfg.model.name == "femnist_cnn"
    assert cfg.data.synthetic_iid is True and cfg.run.results_dir == "out/x"


def test_empty_yaml_file_gives_the_defaults(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    # Execute / Assert
    assert load_config(path) == ExperimentConfig()


def test_resolved_yaml_reads_back_to_the_same_config(tmp_path: Path) -> None:
    # Prepare
    cfg = load_config(None, ["algorithm.name=fedref", "algorithm.gate_delta=0.1", "partition.name=iid", "run.seed=7"])
    path = tmp_path / "resolved.yaml"
    path.write_text(config_to_yaml(cfg))
    # Execute
    again = load_config(path)
    # Assert
    assert again == cfg


def test_parse_override_reads_the_value_as_yaml() -> None:
    # Prepare / Execute / Assert
    assert parse_override("algorithm.lam=0.1") == ("algorithm.lam", 0.1)
    assert parse_override("algorithm.gate_delta=null") == ("algorithm.gate_delta", None)
    assert parse_override("data.synthetic_iid=true") == ("data.synthetic_iid", True)
    assert parse_override(" run.results_dir = a=b") == ("run.results_dir", "a=b")
    assert parse_override("engine.address=") == ("engine.address", "")


def test_apply_overrides_does_not_change_its_input() -> None:
    # Prepare
    raw = {"algorithm": {"mu": 0.1}}
    # Execute
    merged = apply_overrides(raw, ["algorithm.mu=0.2", "run.rounds=3"])
    # Assert
    assert raw == {"algorithm": {"mu": 0.1}}
    assert merged == {"algorithm": {"mu": 0.2}, "run": {"rounds": 3}}


def test_ints_are_accepted_for_floats_but_not_floats_or_bools_for_ints() -> None:
    # Prepare / Execute
    cfg = build_config({"system": {"availability": 1, "deadline_s": 3}})
    # Assert
    assert cfg.system.availability == 1.0 and isinstance(cfg.system.deadline_s, float)
    _raises_naming("algorithm.rho", build_config, {"algorithm": {"name": "fedref", "rho": 2.5}})
    _raises_naming("run.rounds", build_config, {"run": {"rounds": True}})
    _raises_naming("training.lr", build_config, {"training": {"lr": False}})


# (dotted override, the field its error must name)
BAD_OVERRIDES = [
    ("algorithm.name=fedprox algorithm.mu=-1", "algorithm.mu"),
    ("algorithm.name=fedref algorithm.lam=abc", "algorithm.lam"),
    ("algorithm.name=fedref algorithm.lam=-0.1", "algorithm.lam"),
    ("algorithm.name=fedref algorithm.eta_s=0", "algorithm.eta_s"),
    ("algorithm.name=fedref algorithm.rho=0", "algorithm.rho"),
    ("algorithm.name=fedref algorithm.rho=2.5", "algorithm.rho"),
    ("algorithm.name=fedfoo", "algorithm.name"),
    ("algorithm.name=fedref algorithm.ref_weighting=exp", "algorithm.ref_weighting"),
    ("algorithm.name=fedref algorithm.prior=gauss", "algorithm.prior"),
    ("algorithm.name=fedref algorithm.step=newton", "algorithm.step"),
    ("algorithm.name=fedref algorithm.gate_delta=high", "algorithm.gate_delta"),
    ("algorithm.name=fedopt algorithm.beta1=1", "algorithm.beta1"),
    ("algorithm.name=fedopt algorithm.tau=0", "algorithm.tau"),
    ("algorithm.name=fedopt algorithm.server_optimizer=sgd", "algorithm.server_optimizer"),
    ("algorithm.name=scaffold algorithm.eta_g=0", "algorithm.eta_g"),
    ("algorithm.name=scaffold algorithm.weighting=median", "algorithm.weighting"),
    ("algorithm.mu=0.5", "algorithm.mu"),  # FedAvg (the default) has no mu: not silently ignored
    ("algorithm.name=fedref algorithm.server_lr=0.1", "algorithm.server_lr"),
    ("algorithm.clip_update_norm=0", "algorithm.clip_update_norm"),
    ("partition.alpha=0", "partition.alpha"),
    ("partition.num_clients=0", "partition.num_clients"),
    ("partition.num_clients=null", "partition.num_clients"),
    ("partition.name=random", "partition.name"),
    ("training.lr=0", "training.lr"),
    ("training.batch_size=0", "training.batch_size"),
    ("training.momentum=1", "training.momentum"),
    ("training.local_epochs=[1, 2]", "training.local_epochs"),
    ("system.availability=0", "system.availability"),
    ("system.faulty_fraction=1.5", "system.faulty_fraction"),
    ("system.deadline_s=0", "system.deadline_s"),
    ("system.fault_kind=fire", "system.fault_kind"),
    ("engine.num_workers=0", "engine.num_workers"),
    ("engine.gpus_per_worker=-0.5", "engine.gpus_per_worker"),
    ("engine.gpus_per_worker=1.5", "engine.gpus_per_worker"),
    ("engine.name=dask", "engine.name"),
    ("engine.address=1", "engine.address"),
    ("model.name=vgg", "model.name"),
    ("model.hidden=0", "model.hidden"),
    ("run.rounds=0", "run.rounds"),
    ("run.seed=-1", "run.seed"),
    ("run.target_accuracy=0", "run.target_accuracy"),
    ("run.results_dir=", "run.results_dir"),
    ("run.clients_per_round=100", "run.clients_per_round"),
    ("data.name=mnist", "data.root"),
    ("data.test_fraction=1", "data.test_fraction"),
    ("data.synthetic_iid=1", "data.synthetic_iid"),
    ("algorithm.foo=1", "algorithm.foo"),
    ("foo.bar=1", "foo"),
    ("algorithm.mu", "algorithm.mu"),
    ("algorithm=1", "algorithm"),
    ("a.b.c=1", "a.b.c"),
]


@pytest.mark.parametrize(("override", "field"), BAD_OVERRIDES)
def test_bad_override_raises_a_user_error_naming_the_field(override: str, field: str) -> None:
    # Prepare / Execute / Assert
    _raises_naming(
        field, load_config, None, override.split(" ") if override.startswith("algorithm.name=") else [override]
    )


def test_a_key_of_another_algorithm_names_the_allowed_keys() -> None:
    """The issue's case: FedAvg has no mu, so the one line names algorithm.mu and FedAvg's keys."""
    # Prepare / Execute
    message = _raises_naming("algorithm.mu", load_config, None, ["algorithm.name=fedavg", "algorithm.mu=0.5"])
    # Assert
    assert "algorithm.name=fedavg takes name, clip_update_norm" in message


def test_switching_algorithm_by_override_keeps_only_the_file_keys_that_fit(tmp_path: Path) -> None:
    """A file written for FedRef run as FedProx: mu carries over, lam and rho (FedRef's own) are dropped."""
    # Prepare
    path = tmp_path / "fedref.yaml"
    path.write_text("algorithm:\n  name: fedref\n  mu: 0.2\n  lam: 1.0\n  rho: 4\n")
    # Execute
    cfg = load_config(path, ["algorithm.name=fedprox"])
    same = load_config(path, ["algorithm.name=fedref", "algorithm.lam=0.5"])
    # Assert
    assert cfg.algorithm.params == FedProxParams(mu=0.2)
    assert same.algorithm.params == FedRefParams(mu=0.2, lam=0.5, rho=4)
    _raises_naming("algorithm.lam", load_config, path, ["algorithm.name=fedprox", "algorithm.lam=1"])


def test_data_root_must_exist(tmp_path: Path) -> None:
    # Prepare
    missing = tmp_path / "nope"
    # Execute / Assert
    message = _raises_naming("data.root", load_config, None, ["data.name=cifar10", f"data.root={missing}"])
    assert "nope" in message
    assert load_config(None, ["data.name=cifar10", f"data.root={tmp_path}"]).data.root == str(tmp_path)


def test_natural_partition_needs_a_dataset_with_client_ids() -> None:
    # Prepare / Execute / Assert
    _raises_naming("partition.name", load_config, None, ["partition.name=natural", "data.name=mnist5k"])
    cfg = load_config(None, ["partition.name=natural", "partition.num_clients=null", "data.name=synthetic"])
    assert cfg.partition.num_clients is None


def test_unknown_section_and_key_in_yaml(tmp_path: Path) -> None:
    # Prepare
    section = tmp_path / "section.yaml"
    section.write_text("optimizer:\n  lr: 0.1\n")
    key = tmp_path / "key.yaml"
    key.write_text("training:\n  learning_rate: 0.1\n")
    not_mapping = tmp_path / "scalar_section.yaml"
    not_mapping.write_text("training: 0.1\n")
    # Execute / Assert
    _raises_naming("optimizer", load_config, section)
    _raises_naming("training.learning_rate", load_config, key)
    _raises_naming("training", load_config, not_mapping)


def test_bad_files_raise_user_errors_naming_the_file(tmp_path: Path) -> None:
    # Prepare
    broken = tmp_path / "broken.yaml"
    broken.write_text("algorithm: {mu: [1, 2\n")
    a_list = tmp_path / "list.yaml"
    a_list.write_text("- algorithm\n- run\n")
    # Execute / Assert
    _raises_naming("broken.yaml", load_config, broken)
    _raises_naming("list.yaml", load_config, a_list)
    _raises_naming("missing.yaml", load_config, tmp_path / "missing.yaml")
    _raises_naming("config must be a mapping", build_config, [1, 2])


def test_messages_name_the_value_and_what_is_allowed() -> None:
    # Prepare / Execute
    message = _raises_naming("algorithm.mu", load_config, None, ["algorithm.name=fedprox", "algorithm.mu=-1"])
    # Assert
    assert "-1" in message and ">= 0" in message


def test_dataclasses_validate_when_built_directly() -> None:
    # Prepare / Execute / Assert
    with pytest.raises(UserError, match="algorithm.rho"):
        build_config({"algorithm": {"name": "fedref", "rho": 0}})
    with pytest.raises(ValueError, match="rho"):
        FedRefParams(rho=0)
    with pytest.raises(UserError, match="FedRefParams"):
        AlgorithmConfig(name="fedprox", params=FedRefParams())


@pytest.mark.parametrize(
    "override", ["algorithm.lam=.inf", "algorithm.eta_s=.inf", "algorithm.mu=.inf", "training.lr=.inf"]
)
def test_non_finite_coefficients_are_rejected(override: str) -> None:
    # Prepare / Execute / Assert
    _raises_naming(override.split("=")[0], load_config, None, ["algorithm.name=fedref", override])


def test_negative_data_seed_is_rejected() -> None:
    # Prepare / Execute / Assert
    _raises_naming("data.seed", load_config, None, ["data.seed=-1"])
