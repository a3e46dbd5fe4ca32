"""Checks the Ray cluster-launcher configs under cluster/ against Ray's own schema and validators.

Also checks that no config opens the dashboard or Ray's ports to the internet and that every node pins
the same software. Nothing here starts Ray or calls a cloud API: `prepare_config` only merges the
provider's packaged defaults.yaml (aws, gcp) or builds the on-prem node type (local); the cloud calls
(boto3, googleapiclient) live in `commands._bootstrap_config` and the providers' `bootstrap_config`,
which `ray up` runs and these tests never do.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import ray.autoscaler
import yaml
from ray.autoscaler._private.fake_multi_node.node_provider import FAKE_HEAD_NODE_TYPE
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_DIR = Path(__file__).resolve().parents[2] / "cluster"
CLOUD_CONFIGS = ["aws.yaml", "gcp.yaml", "onprem.yaml"]
FIREWALLED_CONFIGS = ["aws.yaml", "gcp.yaml"]
ALL_CONFIGS = [*CLOUD_CONFIGS, "local-fake.yaml"]

# Ports a Ray 2.60 cluster listens on (as started by these configs); none may face the internet.
RAY_PORTS = {
    6379: "GCS",
    8076: "object manager",
    8265: "dashboard",
    10001: "Ray client server",
    52365: "dashboard agent",
}
RAY_WORKER_PORTS = range(10002, 20000)
SSH_PORT = 22
# (min_workers, max_workers) per node type after prepare_config; on-prem has one type for all machines.
AUTOSCALING_BOUNDS = {
    "aws.yaml": {"ray.head.cpu": (0, 0), "ray.worker.cpu": (1, 4), "ray.worker.gpu": (0, 2)},
    "gcp.yaml": {"ray_head_cpu": (0, 0), "ray_worker_cpu": (1, 4), "ray_worker_gpu": (0, 2)},
    "onprem.yaml": {"local.cluster.node": (2, 2)},
}
MAX_WORKERS = {"aws.yaml": 6, "gcp.yaml": 6, "onprem.yaml": 2}
COMMAND_LISTS = [
    "initialization_commands",
    "setup_commands",
    "head_setup_commands",
    "worker_setup_commands",
    "head_start_ray_commands",
    "worker_start_ray_commands",
]
PINS = ["--python 3.11", '"torch==2.14.1"', '"torchvision==0.29.1"', f'"ray[default,tune]=={ray.__version__}"']


@dataclass(frozen=True)
class IngressRule:
    """One inbound firewall rule reduced to what matters here: source CIDRs and a port range."""

    cidrs: tuple[str, ...]
    first_port: int
    last_port: int

    def covers(self, port: int) -> bool:
        """True if the rule admits traffic to `port`."""
        return self.first_port <= port <= self.last_port


def load(name: str) -> dict[str, Any]:
    """The config cluster/NAME as parsed YAML."""
    return yaml.safe_load((CLUSTER_DIR / name).read_text())


def ray_schema() -> dict[str, Any]:
    """Ray's own JSON schema for cluster configs, shipped inside the installed package."""
    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def aws_ingress_rules(config: dict[str, Any]) -> list[IngressRule]:
    """Rules of provider.security_group.IpPermissions (boto3 format); group-to-group pairs have no CIDR."""
    rules = []
    for permission in config["provider"].get("security_group", {}).get("IpPermissions", []):
        cidrs = tuple(r["CidrIp"] for r in permission.get("IpRanges", [])) + tuple(
            r["CidrIpv6"] for r in permission.get("Ipv6Ranges", [])
        )
        if permission["IpProtocol"] == "-1":
            rules.append(IngressRule(cidrs, 0, 65535))
        else:
            rules.append(IngressRule(cidrs, int(permission["FromPort"]), int(permission["ToPort"])))
    return rules


def gcp_ingress_rules(config: dict[str, Any]) -> list[IngressRule]:
    """Rules of metadata.firewall_rules (GCE Firewall API format); tag-sourced rules have no CIDR."""
    rules = []
    for firewall in config.get("metadata", {}).get("firewall_rules", []):
        cidrs = tuple(firewall.get("sourceRanges", []))
        for allowed in firewall["allowed"]:
            for port_spec in allowed.get("ports", ["0-65535"]):
                first, _, last = str(port_spec).partition("-")
                rules.append(IngressRule(cidrs, int(first), int(last or first)))
    return rules


def ingress_rules(config: dict[str, Any]) -> list[IngressRule]:
    """All inbound rules a config declares, whatever the provider."""
    return aws_ingress_rules(config) + gcp_ingress_rules(config)


def is_world(cidr: str) -> bool:
    """True for a CIDR that admits the whole internet (0.0.0.0/0, ::/0 and equivalent spellings)."""
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:  # a REPLACE_WITH placeholder
        return False


def world_open_ray_ports(rules: list[IngressRule]) -> list[str]:
    """Names of the Ray ports that some rule opens to the whole internet."""
    exposed = []
    for rule in rules:
        if not any(is_world(cidr) for cidr in rule.cidrs):
            continue
        exposed += [f"{port} ({name})" for port, name in RAY_PORTS.items() if rule.covers(port)]
        if rule.first_port <= RAY_WORKER_PORTS[-1] and rule.last_port >= RAY_WORKER_PORTS[0]:
            exposed.append("10002-19999 (worker ports)")
    return exposed


def strings_in(node: Any) -> Iterator[str]:
    """Every string value (and key) anywhere in a parsed YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item)


def all_commands(config: dict[str, Any]) -> list[str]:
    """Every shell command of a config, global and per node type."""
    commands = [c for key in COMMAND_LISTS for c in config.get(key, [])]
    for node_type in config.get("available_node_types", {}).values():
        commands += [c for key in COMMAND_LISTS for c in node_type.get(key, [])]
    return commands


def shrink_max_workers(config: dict[str, Any]) -> None:
    """Set max_workers one below the sum of min_workers (on-prem: min_workers = all worker_ips)."""
    if config["provider"]["type"] == "local":
        config["min_workers"] = len(config["provider"]["worker_ips"])
        config["max_workers"] = config["min_workers"] - 1
    else:
        sum_min = sum(t.get("min_workers", 0) for t in config["available_node_types"].values())
        assert sum_min >= 1, "the mutation needs at least one worker type with min_workers >= 1"
        config["max_workers"] = sum_min - 1


def test_cluster_dir_holds_exactly_the_documented_configs() -> None:
    # Prepare
    expected = set(ALL_CONFIGS)

    # Execute
    found = {path.name for path in CLUSTER_DIR.glob("*.yaml")}

    # Assert
    assert found == expected


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_config_matches_ray_schema(name: str) -> None:
    # Prepare
    config = load(name)

    # Execute / Assert (raises jsonschema.ValidationError on any unknown field or wrong type)
    jsonschema.validate(config, ray_schema())


def test_schema_check_rejects_an_unknown_node_type_field() -> None:
    # Prepare
    config = load("aws.yaml")
    config["available_node_types"]["ray.worker.cpu"]["min_worker"] = 1  # typo of min_workers

    # Execute / Assert
    with pytest.raises(jsonschema.ValidationError, match="min_worker"):
        jsonschema.validate(config, ray_schema())


@pytest.mark.parametrize("name", CLOUD_CONFIGS)
def test_ray_prepare_and_validate_accept_cloud_config(name: str) -> None:
    # Prepare
    config = load(name)

    # Execute
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)

    # Assert
    bounds = {k: (t["min_workers"], t["max_workers"]) for k, t in prepared["available_node_types"].items()}
    assert bounds == AUTOSCALING_BOUNDS[name]
    assert prepared["max_workers"] == MAX_WORKERS[name]


@pytest.mark.parametrize("name", CLOUD_CONFIGS)
def test_ray_validate_rejects_head_type_missing_from_node_types(name: str) -> None:
    # Prepare
    prepared = prepare_config(load(name))
    del prepared["available_node_types"][prepared["head_node_type"]]

    # Execute / Assert
    with pytest.raises(ValueError, match="head_node_type"):
        validate_config(prepared)


@pytest.mark.parametrize("name", CLOUD_CONFIGS)
def test_ray_validate_rejects_max_workers_below_sum_of_min_workers(name: str) -> None:
    # Prepare
    config = load(name)
    shrink_max_workers(config)

    # Execute / Assert
    with pytest.raises(ValueError, match="max_workers"):
        validate_config(prepare_config(config))


def test_local_fake_config_is_complete_for_ray_start() -> None:
    """`ray start --autoscaling-config` fills in no defaults, so every user-settable field must be present."""
    # Prepare
    settable = set(ray_schema()["properties"]) - {"no_restart", "metadata"}

    # Execute
    config = load("local-fake.yaml")
    validate_config(config)  # what the autoscaler runs on the raw file

    # Assert
    assert settable - set(config) == set()
    assert config["provider"]["type"] == "fake_multinode"
    assert config["head_node_type"] == FAKE_HEAD_NODE_TYPE


def test_local_fake_config_starts_two_single_cpu_workers_with_a_custom_resource() -> None:
    # Prepare
    config = load("local-fake.yaml")

    # Execute
    workers = {k: t for k, t in config["available_node_types"].items() if k != config["head_node_type"]}

    # Assert
    assert sum(t["min_workers"] for t in workers.values()) == 2
    assert sum(t["max_workers"] for t in workers.values()) == 2 == config["max_workers"]
    for node_type in workers.values():
        custom = set(node_type["resources"]) - {"CPU", "GPU", "memory", "object_store_memory"}
        assert node_type["resources"]["CPU"] == 1
        assert custom, "worker nodes need a custom resource to be targeted"


@pytest.mark.parametrize("name", FIREWALLED_CONFIGS)
def test_no_ingress_rule_opens_ray_ports_to_the_internet(name: str) -> None:
    # Prepare
    config = load(name)

    # Execute
    rules = ingress_rules(config)

    # Assert
    assert rules, f"{name} declares no ingress rules"
    assert world_open_ray_ports(rules) == []


@pytest.mark.parametrize("name", FIREWALLED_CONFIGS)
def test_only_ssh_is_reachable_from_an_address_range(name: str) -> None:
    """Intra-cluster rules name the group or tag, not a CIDR; a CIDR-sourced rule may only open ssh."""
    # Prepare
    config = load(name)

    # Execute
    cidr_rules = [rule for rule in ingress_rules(config) if rule.cidrs]

    # Assert
    assert cidr_rules
    assert all((rule.first_port, rule.last_port) == (SSH_PORT, SSH_PORT) for rule in cidr_rules)
    assert not any(is_world(cidr) for rule in cidr_rules for cidr in rule.cidrs)


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_no_config_contains_a_world_cidr(name: str) -> None:
    # Prepare
    config = load(name)

    # Execute
    world = [s for s in strings_in(config) if "0.0.0.0/0" in s or "::/0" in s]

    # Assert
    assert world == []


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "6379 (GCS)"),
        ({"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}, "8265 (dashboard)"),
        (
            {"IpProtocol": "tcp", "FromPort": 15000, "ToPort": 15001, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            "10002-19999",
        ),
    ],
)
def test_port_check_flags_a_world_open_aws_rule(rule: dict[str, Any], expected: str) -> None:
    # Prepare
    config = load("aws.yaml")
    config["provider"]["security_group"]["IpPermissions"].append(rule)

    # Execute
    exposed = world_open_ray_ports(ingress_rules(config))

    # Assert
    assert any(expected in item for item in exposed)


def test_port_check_flags_a_world_open_gcp_rule() -> None:
    # Prepare
    config = load("gcp.yaml")
    config["metadata"]["firewall_rules"].append(
        {"name": "oops", "sourceRanges": ["0.0.0.0/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["8000-9000"]}]}
    )

    # Execute
    exposed = world_open_ray_ports(ingress_rules(config))

    # Assert
    assert exposed == ["8076 (object manager)", "8265 (dashboard)"]


@pytest.mark.parametrize("name", CLOUD_CONFIGS)
def test_head_binds_dashboard_to_loopback(name: str) -> None:
    """Checked on the prepared config, so a misspelt key that let Ray's 0.0.0.0 default through would fail."""
    # Prepare
    prepared = prepare_config(load(name))

    # Execute
    head_starts = [c for c in prepared["head_start_ray_commands"] if re.search(r"\bray start\b.*--head\b", c)]
    hosts = [h for c in all_commands(prepared) for h in re.findall(r"--dashboard-host[= ](\S+)", c)]

    # Assert
    assert len(head_starts) == 1
    assert "--dashboard-host=127.0.0.1" in head_starts[0]
    assert set(hosts) == {"127.0.0.1"}


@pytest.mark.parametrize("name", CLOUD_CONFIGS)
def test_every_ray_start_sets_the_same_auth_mode(name: str) -> None:
    # Prepare
    prepared = prepare_config(load(name))
    commands = all_commands(prepared)

    # Execute
    modes = {m for c in commands for m in re.findall(r"RAY_AUTH_MODE=(\w+)", c)}
    starts = [c for c in commands if re.search(r"\bray start\b", c)]

    # Assert
    assert len(modes) == 1 and modes <= {"token", "disabled"}
    assert len(starts) == 2
    assert all("RAY_AUTH_MODE=" in c for c in starts)
    if modes == {"token"}:
        assert "~/.ray/auth_token" in prepared["file_mounts"]


@pytest.mark.parametrize("name", CLOUD_CONFIGS)
def test_every_node_installs_the_project_with_pinned_versions(name: str) -> None:
    # Prepare
    prepared = prepare_config(load(name))

    # Execute
    head_setup = " ".join(prepared["head_setup_commands"])
    worker_setup = " ".join(prepared["worker_setup_commands"])
    per_type_overrides = [k for k, t in prepared["available_node_types"].items() if "worker_setup_commands" in t]

    # Assert
    for setup in (head_setup, worker_setup):
        assert [pin for pin in PINS if pin not in setup] == []
        assert "~/fedref-ray-wheel/fedref_ray-*.whl" in setup
    assert prepared["file_mounts"]["~/fedref-ray-wheel"] == "./dist"
    assert per_type_overrides == []
