"""The sweep file: parsing every kind of dimension, and one-line errors naming the field before any trial starts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from fedref_ray.errors import UserError
from fedref_ray.tune.space import Dimension, dump_sweep, load_sweep, parse_sweep, resolve_point, trial_config

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
BASE = {
    "data": {"name": "digits"},
    "partition": {"num_clients": 10},
    "algorithm": {"name": "fedprox"},
    "run": {"rounds": 4, "clients_per_round": 5},
}


def write_sweep(tmp_path: Path, **sweep) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": BASE, **sweep}, sort_keys=False))
    return path


def test_smoke_sweep_file_parses_into_typed_dimensions():
    # Execute
    spec = load_sweep(EXPERIMENTS / "tune_smoke.yaml")
    # Assert
    assert [(d.name, d.kind) for d in spec.space] == [
        ("algorithm.name", "grid"),
        ("partition.alpha", "grid"),
        ("run.seed", "grid"),
        ("algorithm.mu", "loguniform"),
        ("algorithm.lam", "choice"),
    ]
    assert spec.space[3].values == (0.001, 0.1)
    assert spec.num_grid_points() == 8
    assert spec.base["engine"]["cpus_per_worker"] == 0.5 and spec.base["engine"]["num_workers"] == 2


def test_headline_sweep_file_is_valid():
    spec = load_sweep(EXPERIMENTS / "tune_mu_alpha.yaml")
    assert {"algorithm.name", "algorithm.mu", "algorithm.lam", "partition.alpha", "run.seed"} <= set(spec.fields())
    assert spec.base["data"]["name"] == "mnist5k"


def test_text_and_mapping_forms_are_the_same_dimension(tmp_path):
    # Prepare
    text = write_sweep(tmp_path, space={"algorithm.mu": "loguniform [1e-4, 1]", "run.seed": "randint [0, 3]"})
    as_text = load_sweep(text)
    mapping = write_sweep(tmp_path, space={"algorithm.mu": {"loguniform": [1e-4, 1]}, "run.seed": {"randint": [0, 3]}})
    # Execute
    as_mapping = load_sweep(mapping)
    # Assert
    assert (
        as_text.space
        == as_mapping.space
        == (
            Dimension("algorithm.mu", "loguniform", (1e-4, 1.0)),
            Dimension("run.seed", "randint", (0, 3)),
        )
    )


def test_joint_dimension_sets_several_fields_per_option(tmp_path):
    # Prepare: FedAvg alone, FedProx with its mu, FedRef with its lam
    arms = [
        {"algorithm.name": "fedavg"},
        {"algorithm.name": "fedprox", "algorithm.mu": 0.01},
        {"algorithm.name": "fedref", "algorithm.lam": 0.5},
    ]
    spec = load_sweep(write_sweep(tmp_path, space={"arm": {"grid": arms}, "run.seed": "grid [0, 1]"}))
    # Execute
    fields = resolve_point(spec.space, {"arm": arms[1], "run.seed": 1})
    cfg = trial_config(spec.base, fields, results_dir="/tmp/x")
    # Assert
    assert spec.fields() == ("algorithm.name", "algorithm.mu", "algorithm.lam", "run.seed")
    assert spec.num_grid_points() == 6
    assert (cfg.algorithm.name, cfg.algorithm.params.mu, cfg.run.seed, cfg.run.results_dir) == (
        "fedprox",
        0.01,
        1,
        "/tmp/x",
    )


def test_saved_spec_reads_back_identically(tmp_path):
    # Prepare
    spec = load_sweep(EXPERIMENTS / "tune_smoke.yaml", ["run.rounds=2"])
    saved = tmp_path / "saved.yaml"
    saved.write_text(dump_sweep(spec))
    # Execute
    again = parse_sweep(yaml.safe_load(saved.read_text()), str(saved), tmp_path)
    # Assert
    assert dataclasses.replace(again, source=spec.source) == spec
    assert again.base["run"]["rounds"] == 2


@pytest.mark.parametrize(
    ("sweep", "overrides", "named"),
    [
        ({"space": {"algorithm.muu": "grid [0.1]"}}, (), "algorithm.muu"),
        ({"space": {"optim.lr": "grid [0.1]"}}, (), "optim.lr"),
        ({"space": {"algorithm.mu": "gird [0.1, 1]"}}, (), "algorithm.mu"),
        ({"space": {"algorithm.mu": "grid"}}, (), "algorithm.mu"),
        ({"space": {"algorithm.mu": "grid []"}}, (), "algorithm.mu"),
        ({"space": {"algorithm.mu": "uniform [0, 1, 2]"}}, (), "algorithm.mu"),
        ({"space": {"algorithm.mu": "uniform [1, 0]"}}, (), "algorithm.mu"),
        ({"space": {"algorithm.mu": "loguniform [0, 1]"}}, (), "algorithm.mu"),
        ({"space": {"run.seed": "randint [0, 2.5]"}}, (), "run.seed"),
        ({"space": {"run.seed": "uniform [0, 3]"}}, (), "run.seed"),
        ({"space": {"algorithm.name": "grid [fedavg, sgd]"}}, (), "algorithm.name"),
        ({"space": {"algorithm.mu": "grid [0.1, -1]"}}, (), "algorithm.mu"),
        ({"space": {"arm": "grid [1, 2]"}}, (), "arm"),
        ({"space": {"arm": {"grid": [{"algorithm.name": "fedprox", "algorithm.muu": 1}]}}}, (), "algorithm.muu"),
        ({"space": {"partition.num_clients": "grid [10, 3]"}}, (), "run.clients_per_round"),
        ({"space": {"run.seed": "grid [0]"}, "schedular": "asha"}, (), "schedular"),
        ({"space": {"run.seed": "grid [0]"}, "scheduler": {"name": "asha", "metric": "acc"}}, (), "scheduler.metric"),
        (
            {"space": {"run.seed": "grid [0]"}, "scheduler": {"name": "asha", "grace_period": 9}},
            (),
            "scheduler.grace_period",
        ),
        ({"space": {"run.seed": "grid [0]"}, "scheduler": "hyperband"}, (), "scheduler.name"),
        ({"space": {"run.seed": "grid [0]"}, "trial_cpus": 0}, (), "trial_cpus"),
        ({"space": {"run.seed": "grid [0]"}, "overrides": {"run.sed": 1}}, (), "run.sed"),
        ({"space": {"run.seed": "grid [0]"}}, ("run.seed=3",), "run.seed"),
        ({"space": {"run.seed": "grid [0]"}}, ("training.lr=-1",), "training.lr"),
        ({"space": {}}, (), "space"),
    ],
)
def test_malformed_sweep_fails_with_one_line_naming_the_field(tmp_path, sweep, overrides, named):
    # Prepare
    path = write_sweep(tmp_path, **sweep)
    # Execute
    with pytest.raises(UserError) as caught:
        load_sweep(path, overrides)
    # Assert
    message = str(caught.value)
    assert named in message and str(path) in message
    assert "\n" not in message


def test_missing_base_file_is_named(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("base: nowhere.yaml\nspace:\n  run.seed: grid [0]\n")
    with pytest.raises(UserError, match="nowhere.yaml"):
        load_sweep(path)
