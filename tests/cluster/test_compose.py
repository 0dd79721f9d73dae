"""The `docker` backend's compose file, checked without an engine: a 3-participant network is
built with ComposeBackend (homes only, nothing started), written as YAML, read back, and held
against what the process backend would run and what `Network.build` wrote (configs, peers).
Running it needs a Docker engine: here that path is checked to fail with a clear reason, and
`compose config` validates the file where a compose tool exists.
"""

from __future__ import annotations

import ipaddress
import json
import tomllib
from pathlib import Path

import pytest
import yaml

from chain.node.setup import node_key
from testermint_py.cluster import gonka_command
from testermint_py.compose import (
    ComposeBackend,
    ComposeError,
    DockerUnavailable,
    compose_command,
    docker_unavailable_reason,
    down_compose,
    run_compose,
    validate_compose,
    write_compose,
)
from testermint_py.network import PARTS, STANDARD_PORTS, Backend, Network

N = 3
SUBNET = "10.78.0.0/24"


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return Network.build(tmp_path / "net", N, backend=ComposeBackend(N, SUBNET))


@pytest.fixture
def compose(net: Network, tmp_path: Path) -> dict:
    path = write_compose(net, tmp_path / "compose.yaml", image="gonka:dev")
    return yaml.safe_load(path.read_text())


def expected_command(net: Network, i: int, part: str) -> list[str]:
    """The process backend's argv for the part, its interpreter swapped for the image's."""
    argv = net.argv(net.participants[i], part)
    if part == "mock":
        return ["python", *argv[1:]]
    return ["gonka", *argv[len(gonka_command()):]]


def test_one_service_per_process_running_the_process_backends_command(net, compose):
    services = compose["services"]
    assert sorted(services) == sorted(f"p{i}-{part}" for i in range(N) for part in PARTS)
    for i in range(N):
        for part in PARTS:
            service = services[f"p{i}-{part}"]
            assert service["image"] == "gonka:dev"
            assert service["command"] == expected_command(net, i, part)
            assert service["restart"] == "no"
            assert service["environment"]["PYTHONUNBUFFERED"] == "1"
            # The root is mounted where it is here, so the homes' absolute paths hold.
            assert service["volumes"] == [{"type": "bind", "source": str(net.root),
                                           "target": str(net.root)}]


def test_a_participants_processes_share_its_chain_services_namespace(compose):
    services = compose["services"]
    for i in range(N):
        chain = services[f"p{i}-chain"]
        assert "network_mode" not in chain and list(chain["networks"]) == ["gonka"]
        for part in ("mock", "api"):
            service = services[f"p{i}-{part}"]
            assert service["network_mode"] == f"service:p{i}-chain"
            assert "networks" not in service and "ports" not in service


def test_each_participant_has_its_own_static_address_inside_the_subnet(net, compose):
    network = compose["networks"]["gonka"]
    (ipam,) = network["ipam"]["config"]
    assert ipam["subnet"] == SUBNET
    subnet, gateway = ipaddress.ip_network(SUBNET), ipaddress.ip_address(ipam["gateway"])
    addresses = [compose["services"][f"p{i}-chain"]["networks"]["gonka"]["ipv4_address"]
                 for i in range(N)]
    assert addresses == [p.address for p in net.participants]
    assert len(set(addresses)) == N
    for address in map(ipaddress.ip_address, addresses):
        assert address in subnet and address not in (gateway, subnet.network_address,
                                                     subnet.broadcast_address)
    assert all(p.ports == STANDARD_PORTS for p in net.participants)


def test_the_api_node_starts_after_its_chain_node_and_mock_answer(compose):
    services = compose["services"]
    for i in range(N):
        assert "depends_on" not in services[f"p{i}-chain"]
        assert services[f"p{i}-mock"]["depends_on"] == {
            f"p{i}-chain": {"condition": "service_started"}}
        assert services[f"p{i}-api"]["depends_on"] == {
            f"p{i}-chain": {"condition": "service_healthy"},
            f"p{i}-mock": {"condition": "service_healthy"}}
        for dependency in services[f"p{i}-api"]["depends_on"]:
            assert "healthcheck" in services[dependency]


def test_healthchecks_probe_each_process_where_the_harness_does(net, compose):
    for p in net.participants:
        for part, url in (("chain", f"http://{p.address}:26657/status"),
                          ("mock", f"http://{p.address}:8080/mock/stats"),
                          ("api", f"http://{p.address}:9000/v1/status")):
            test = compose["services"][f"p{p.index}-{part}"]["healthcheck"]["test"]
            assert test[:3] == ["CMD", "python", "-c"] and repr(url) in test[3]


def test_every_path_in_the_commands_lies_under_the_mounted_root_and_exists(net, compose):
    for name, service in compose["services"].items():
        command = service["command"]
        for flag, arg in zip(command, command[1:], strict=False):
            if not arg.startswith("/"):
                continue
            path = Path(arg)
            assert path.is_relative_to(net.root), (name, arg)
            if name.endswith("-api") and flag == "--home":
                assert path.parent.is_dir()   # the API node creates its own home
            else:
                assert path.exists(), (name, arg)


def test_api_configs_point_at_the_participants_own_address(net):
    for p in net.participants:
        config = json.loads(p.api_config.read_text())
        assert config["chain_rpc"] == f"http://{p.address}:26657"
        assert [node["url"] for node in config["ml_nodes"]] == [f"http://{p.address}:8080"]
        assert config["public_url"] == f"http://{p.address}:9000"
        assert config["public"] == {"host": p.address, "port": 9000}
        assert config["admin"]["host"] == p.address and config["admin"]["token"]
        # The mock posts PoC batches over the namespace it shares with the API node.
        assert config["callbacks"] == {"host": "127.0.0.1", "port": 9100}
        key_file = Path(config["signer_key_file"])
        assert key_file.is_relative_to(net.root) and key_file.is_file()


def test_chain_configs_peer_with_every_other_participants_address(net):
    for p in net.participants:
        config = tomllib.loads(p.chain_home.config_file.read_text())
        assert config["p2p"]["listen"] == f"{p.address}:26656"
        assert config["rpc"]["listen"] == f"{p.address}:26657"
        assert sorted(config["p2p"]["persistent_peers"]) == sorted(
            f"{node_key(q.chain_home).id.hex()}@{q.address}:26656"
            for q in net.participants if q is not p)


def test_a_dollar_in_a_path_is_not_read_as_a_compose_variable(tmp_path):
    net = Network.build(tmp_path / "a$HOME", 2, backend=ComposeBackend(2))
    document = yaml.safe_load(write_compose(net, tmp_path / "compose.yaml").read_text())
    assert document["services"]["p0-chain"]["command"][-1] == f"{tmp_path}/a$$HOME/p0/chain"


def test_a_network_not_on_the_subnet_is_refused(tmp_path):
    net = Network.build(tmp_path / "net", 2, backend=Backend())    # 127.0.0.1, free ports
    with pytest.raises(ComposeError, match="ComposeBackend"):
        write_compose(net, tmp_path / "compose.yaml")
    with pytest.raises(ComposeError, match="not a host of 10.78.0.0/24"):
        write_compose(net, tmp_path / "compose.yaml", subnet=SUBNET)
    with pytest.raises(ComposeError, match="room for"):
        ComposeBackend(300, SUBNET)


async def test_the_backend_cannot_partition():
    backend = ComposeBackend(N, SUBNET)
    with pytest.raises(NotImplementedError, match="netns backend"):
        await backend.partition(1)
    with pytest.raises(NotImplementedError, match="netns backend"):
        await backend.heal(1)


@pytest.mark.skipif(docker_unavailable_reason() is None,
                    reason="a Docker engine and compose tool exist here")
def test_running_without_an_engine_says_what_is_missing(net, tmp_path):
    path = write_compose(net, tmp_path / "compose.yaml")
    reason = docker_unavailable_reason()
    for command in (run_compose, down_compose):
        with pytest.raises(DockerUnavailable) as caught:
            command(path)
        assert str(path) in str(caught.value)
        assert ("engine" in str(caught.value) or "compose tool" in str(caught.value))
    assert ("engine" in reason) or ("compose tool" in reason)


@pytest.mark.skipif(compose_command() is None,
                    reason="no compose tool here (neither `docker compose` nor `docker-compose`)")
def test_the_compose_tool_accepts_the_file(net, tmp_path):
    path = write_compose(net, tmp_path / "compose.yaml")
    resolved = yaml.safe_load(validate_compose(path))
    assert sorted(resolved["services"]) == sorted(f"p{i}-{part}" for i in range(N)
                                                  for part in PARTS)
