"""The harness's `docker` backend: a built network (`Network.build`) written as a Docker Compose
file, one service per process, for a machine with a Docker engine.

    net = Network.build(root, 3, backend=ComposeBackend(3))     # homes only, nothing started
    path = write_compose(net, root / "compose.yaml")            # image gonka:dev (deploy/)
    run_compose(path)   # docker compose up --detach --wait; DockerUnavailable without an engine
    ...                 # the test process reaches every participant at its address, as in netns
    down_compose(path)

The mapping, and why:

* A participant is one address, as in the `netns` backend: `ComposeBackend` hands participant i
  the static address `subnet[i + 2]` on the compose network (`.1` is the bridge's gateway), with
  the standard ports, so `Network.build` writes the chain configs' listen addresses and
  persistent peers and the API configs' URLs exactly as for netns.
* Its three processes are three services, `p{i}-chain`, `p{i}-mock` and `p{i}-api`, that share
  one network namespace: the chain service owns it (and the static address); the mock and the
  API node join it (`network_mode: service:p{i}-chain`). Each process binds the participant's
  address as it does on netns, and the mock's PoC callbacks to the API node's loopback-only
  callbacks server (127.0.0.1:9100) keep working; separate addresses per service would need a
  second, compose-only API config. Restarting one service leaves the others running, as a
  process restart does (the chain service's restart recreates the namespace its partners hold,
  so restart those with it).
* The network's root folder is bind-mounted at the same path in every container, so the homes,
  configs, key files and absolute paths `Network.build` wrote work unchanged; each command is
  the process backend's argv with only the host's interpreter swapped for the image's (`gonka`,
  `python` on the image's PATH). The containers run as this machine's user, so what the nodes
  write under the root stays removable by the harness.
* Start order is compose's `depends_on`: the mock after the chain (it joins its namespace), the
  API node once both answer (healthchecks: chain RPC /status, mock /mock/stats, API /v1/status;
  the probes the harness's `wait_up` makes). `init: true` because a process that is PID 1 gets
  no default SIGTERM action and would only stop at the SIGKILL after the grace period.

What it does not do: partitions (the engine owns the network; use the netns backend) and the
harness's per-process start/stop/kill (`Network.start` runs processes on this machine, so a
network built with this backend is run through compose only). It never talks to an engine
except in `run_compose` / `down_compose` / `validate_compose`, and never builds the image.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from testermint_py.cluster import gonka_command
from testermint_py.network import (
    PARTS,
    STANDARD_PORTS,
    Backend,
    Network,
    Part,
    Participant,
)

IMAGE = "gonka:dev"
SUBNET = "10.78.0.0/24"
NETWORK = "gonka"               # the compose network every participant is on
PROJECT = "testermint"
# Health probes: every second, for up to HANG_GUARD_S-ish (a hang guard, not a timing).
HEALTH = {"interval": "1s", "timeout": "3s", "retries": 240, "start_period": "2s"}
STOP_GRACE = "30s"              # as Network.stop waits for a SIGTERMed process
NO_COMPOSE_TOOL = ("no compose tool (neither the `docker compose` plugin nor `docker-compose` "
                   "is installed)")


class ComposeError(RuntimeError):
    """A network that cannot be written as a compose file, or a compose command that failed."""


class DockerUnavailable(ComposeError):
    """No Docker engine, or no compose tool, on this machine (the reason says which)."""


class ComposeBackend(Backend):
    """Addresses for a network that runs under Docker Compose: participant i at the static
    address `subnet[i + 2]`, every server on its standard port. Commands are the containers'
    (the image's `gonka` and `python`); nothing is started from here."""

    name = "docker"

    def __init__(self, n: int, subnet: str = SUBNET) -> None:
        self.subnet = ipaddress.IPv4Network(subnet)
        hosts = list(self.subnet.hosts())
        if n + 1 > len(hosts):
            raise ComposeError(f"subnet {subnet} has room for {len(hosts) - 1} participants "
                               f"beside its gateway, not {n}")
        self.n = n
        self.gateway = str(hosts[0])
        self._addresses = [str(h) for h in hosts[1:n + 1]]

    def address(self, index: int) -> str:
        return self._addresses[index]

    def ports(self, index: int) -> dict[str, int]:
        return dict(STANDARD_PORTS)

    def command(self, index: int, argv: list[str]) -> list[str]:
        return container_argv(argv)

    async def partition(self, index: int) -> None:
        raise NotImplementedError(
            f"the docker backend cannot partition participant {index}: the compose network "
            "belongs to the Docker engine (`docker network disconnect` does it by hand); "
            "scenarios with partitions use the netns backend")

    async def heal(self, index: int) -> None:
        raise NotImplementedError(
            f"the docker backend cannot heal participant {index}: it cannot partition one "
            "(scenarios with partitions use the netns backend)")


def container_argv(argv: list[str]) -> list[str]:
    """A process backend argv as the image runs it: this venv's `gonka` (or its interpreter)
    becomes the image's; every other argument (paths under the mounted root) is unchanged."""
    gonka = gonka_command()
    if argv[:len(gonka)] == gonka:
        return ["gonka", *argv[len(gonka):]]
    if argv and argv[0] == sys.executable:
        return ["python", *argv[1:]]
    return list(argv)


def service_name(index: int, part: Part) -> str:
    return f"p{index}-{part}"


def compose_file(net: Network, *, image: str = IMAGE, subnet: str | None = None,
                 project: str = PROJECT, user: str | None = None) -> dict[str, Any]:
    """The compose document for `net` (see the module docstring). `subnet`: the compose
    network's (default: the ComposeBackend's); every participant's address must be a distinct
    host of it other than the gateway. `user`: the containers' uid:gid (default: this
    process's)."""
    if subnet is None:
        if not isinstance(net.backend, ComposeBackend):
            raise ComposeError(f"the network was built with the {net.backend.name} backend; "
                               "build it with ComposeBackend(n), or name the subnet its "
                               "addresses are on")
        subnet = str(net.backend.subnet)
    network = ipaddress.IPv4Network(subnet)
    gateway = next(network.hosts())
    root = net.root
    if not root.is_absolute():
        raise ComposeError(f"the network's root {root} must be an absolute path: it is mounted "
                           "at the same path in every container")
    seen: dict[str, int] = {}
    for p in net.participants:
        address = ipaddress.IPv4Address(p.address)
        if address not in network or address in (gateway, network.network_address,
                                                  network.broadcast_address):
            raise ComposeError(f"participant {p.index}'s address {p.address} is not a host of "
                               f"{subnet} beside its gateway {gateway}")
        if p.address in seen:
            raise ComposeError(f"participants {seen[p.address]} and {p.index} share the "
                               f"address {p.address}")
        seen[p.address] = p.index
    user = user if user is not None else f"{os.getuid()}:{os.getgid()}"
    services: dict[str, Any] = {}
    for p in net.participants:
        for part in PARTS:
            services[service_name(p.index, part)] = _service(net, p, part, image, user)
    return {
        "name": project,
        "services": services,
        "networks": {NETWORK: {"driver": "bridge",
                               "ipam": {"config": [{"subnet": str(network),
                                                    "gateway": str(gateway)}]}}},
    }


def _service(net: Network, p: Participant, part: Part, image: str, user: str) -> dict[str, Any]:
    chain = service_name(p.index, "chain")
    service: dict[str, Any] = {
        "image": image,
        # `$` would be compose's variable interpolation.
        "command": [arg.replace("$", "$$") for arg in container_argv(net.argv(p, part))],
        "user": user,
        "environment": {"PYTHONUNBUFFERED": "1", "HOME": "/tmp"},
        "volumes": [{"type": "bind", "source": str(net.root), "target": str(net.root)}],
        "init": True,
        "restart": "no",
        "stop_grace_period": STOP_GRACE,
        "healthcheck": {"test": _probe(_health_url(p, part)), **HEALTH},
    }
    if part == "chain":
        service["hostname"] = p.name
        service["networks"] = {NETWORK: {"ipv4_address": p.address}}
    else:
        service["network_mode"] = f"service:{chain}"
    if part == "mock":
        service["depends_on"] = {chain: {"condition": "service_started"}}
    if part == "api":
        service["depends_on"] = {chain: {"condition": "service_healthy"},
                                 service_name(p.index, "mock"): {"condition": "service_healthy"}}
    return service


def _health_url(p: Participant, part: Part) -> str:
    return {"chain": f"{p.rpc_url}/status", "mock": f"{p.mock_url}/mock/stats",
            "api": f"{p.public_url}/v1/status"}[part]


def _probe(url: str) -> list[str]:
    # The image has Python, not curl; urlopen raises (exit 1) on a refusal or a non-2xx answer.
    return ["CMD", "python", "-c", f"import urllib.request; urllib.request.urlopen({url!r}, "
                                   "timeout=2)"]


def write_compose(net: Network, path: Path | str, **options: Any) -> Path:
    """`compose_file(net, **options)` written as YAML to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = compose_file(net, **options)
    header = (f"# Written by testermint_py.compose for the network under {net.root}.\n"
              "# Run: docker compose -f THIS_FILE up --detach --wait\n")
    path.write_text(header + yaml.safe_dump(document, sort_keys=False, width=1000))
    return path


# -- the engine -----------------------------------------------------------------------------------

def compose_command() -> list[str] | None:
    """The compose tool here: the `docker compose` plugin, else `docker-compose`, else None."""
    if shutil.which("docker") and _succeeds(["docker", "compose", "version"]):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def docker_engine_available() -> bool:
    """A Docker engine answers the docker CLI (`docker info`)."""
    return _engine_problem() is None


def docker_unavailable_reason() -> str | None:
    """Why compose files cannot be run here (None: they can)."""
    problems = [] if compose_command() is not None else [NO_COMPOSE_TOOL]
    if (engine := _engine_problem()) is not None:
        problems.append(engine)
    return "; ".join(problems) or None


def _engine_problem() -> str | None:
    if not shutil.which("docker"):
        return "no docker CLI on PATH"
    try:
        result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                                capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "no Docker engine answers (`docker info` timed out after 20 s)"
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Docker engine answers (`docker info`: {detail})"
    return None


def _succeeds(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _compose(path: Path | str, *args: str, needs_engine: bool = True) -> str:
    command = compose_command()
    problems = [] if command is not None else [NO_COMPOSE_TOOL]
    if needs_engine and (engine := _engine_problem()) is not None:
        problems.append(engine)
    if command is None or problems:
        raise DockerUnavailable(f"cannot run `compose {' '.join(args)}` for {path}: "
                                f"{'; '.join(problems)}")
    argv = [*command, "-f", str(path), *args]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise ComposeError(f"`{' '.join(argv)}` failed ({result.returncode}):\n"
                           f"{result.stderr[-4000:]}")
    return result.stdout


def validate_compose(path: Path | str) -> str:
    """`compose config`: the file as the compose tool reads it (needs the tool, not an engine)."""
    return _compose(path, "config", needs_engine=False)


def run_compose(path: Path | str, *, wait: bool = True) -> None:
    """`compose up --detach` (and, with `wait`, until every healthcheck passes)."""
    _compose(path, "up", "--detach", *(["--wait"] if wait else []))


def down_compose(path: Path | str) -> None:
    """`compose down`: every container and the network removed (the root's files stay)."""
    _compose(path, "down", "--remove-orphans", "--timeout", STOP_GRACE.removesuffix("s"))
