"""Linux network namespaces for the harness's `netns` backend: one host per participant.

`NetnsLab(prefix)` is an async context manager that builds, in the root namespace, a bridge with
the address `gateway` (10.77.0.1 by default) and, for each `add_host(name)`, a network namespace
joined to the bridge by a veth pair: inside it `lo` and `eth0` with its own `address`
(10.77.0.2, .3, ...). Every host runs its servers on its own address and ports, reaches every
other host directly, and is reachable from the test process itself (the root namespace). A
process is run inside a host with `host.command(*argv)` (`ip netns exec <ns> ...`).

Faults are cuts in that network, never in the processes:

* `cut(host)` unplugs the host's cable (its bridge-side veth goes down): nobody reaches it, not
  even the test process, and it reaches nobody; established connections stall. `heal(host)`
  plugs it back in.
* `cut_between(a, b)` / `partition(*groups)` drop traffic between two hosts (both ways, also on
  established connections) while the test process still reaches both: each side's neighbour
  entry for the other is pinned to a MAC address nobody has, so frames go nowhere and the
  peers see timeouts, as in a real partition, rather than instant errors. `heal_between` /
  `heal_all` undo them.

Everything the lab creates is named after its prefix (namespaces `<prefix>-<host>`, links
`<prefix>-br` and `<prefix>-<i>`), and teardown removes by that prefix rather than by what it
remembers: leaving the `async with` block, however it ends, kills what still runs inside the
lab's namespaces and deletes them, the veths and the bridge; and entering one first removes a
stale lab of the same prefix that a killed test left behind. So one prefix is one lab at a time
on a machine; labs side by side need distinct prefixes and subnets (an overlapping subnet is
refused with `SubnetInUse`).

Needs Linux, iproute2's `ip`, and root (CAP_NET_ADMIN and CAP_SYS_ADMIN); `netns_available()`
probes for all of it so tests can skip with the reason. Nothing here uses nftables, iptables or
tc. On a host whose firewall drops bridged traffic (Docker sets the FORWARD policy to DROP and
`br_netfilter` sends bridged frames through it) hosts would not reach each other; this module
does not touch firewall rules.

This module only wires the network: it never starts, watches or restarts the participants'
processes (beyond killing leftovers inside its own namespaces at teardown).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import trio

# An `ip` command answers in milliseconds; this only guards against a wedged one.
COMMAND_TIMEOUT_S = 30.0
# Locally administered, and not one the kernel gives a veth (those are random): frames sent to it
# are flooded by the bridge and dropped by every host as addressed to someone else.
NOWHERE_MAC = "02:00:00:00:00:01"
_PREFIX_RE = re.compile(r"[a-z][a-z0-9]{0,7}")
_HOST_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_GONE = ("Cannot find device", "No such file or directory", "does not exist")
_ROOT_HINT = "creating network namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)"


class NetnsError(Exception):
    """An `ip` command failed: the command, its exit status and what it wrote to stderr."""

    def __init__(self, command: Sequence[str], returncode: int | None, stderr: str) -> None:
        self.command = list(command)
        self.returncode = returncode
        self.stderr = stderr
        status = "could not run" if returncode is None else f"failed (exit {returncode})"
        super().__init__(f"`{' '.join(self.command)}` {status}: {stderr}")


class NetnsUnavailable(NetnsError):
    """This machine cannot host a lab: not Linux, no `ip`, or not allowed to (not root)."""


class SubnetInUse(NetnsError):
    """The lab's subnet overlaps a network the root namespace already has."""


@dataclass(frozen=True)
class NetnsHost:
    """One participant's machine: a namespace with `address` on the lab's bridge."""

    name: str
    index: int
    namespace: str
    address: str
    # The bridge-side end of its veth pair, in the root namespace (its "cable").
    link: str

    def command(self, *argv: str | os.PathLike[str]) -> list[str]:
        """`argv` run inside this host's namespace (the process sees only `lo` and `eth0`)."""
        return ["ip", "netns", "exec", self.namespace, *map(os.fspath, argv)]


class NetnsLab:
    """A bridge and one namespace per host; see the module docstring. Use with `async with`."""

    def __init__(self, prefix: str = "tm", subnet: str = "10.77.0.0/24") -> None:
        if not _PREFIX_RE.fullmatch(prefix):
            raise ValueError(f"prefix {prefix!r} must be 1-8 of [a-z0-9], starting with a letter "
                             "(interface names are at most 15 characters)")
        self.prefix = prefix
        self.subnet = ipaddress.IPv4Network(subnet)
        addresses = list(self.subnet.hosts())
        if len(addresses) < 2:
            raise ValueError(f"subnet {subnet} has no room for a gateway and a host")
        self.gateway = str(addresses[0])
        self._free = addresses[1:]
        self.bridge = f"{prefix}-br"
        self.hosts: dict[str, NetnsHost] = {}
        self._cut: set[str] = set()
        self._blocked: set[frozenset[str]] = set()

    # -- lifetime ------------------------------------------------------------------------------

    async def __aenter__(self) -> NetnsLab:
        if not sys.platform.startswith("linux"):
            raise NetnsUnavailable([], None, f"network namespaces need Linux, not {sys.platform}")
        try:
            await remove_lab(self.prefix)
            try:
                await self._check_subnet_free()
                await _ip("link", "add", self.bridge, "type", "bridge", "stp_state", "0",
                          "forward_delay", "0")
                await _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}",
                          "dev", self.bridge)
                await _ip("link", "set", self.bridge, "up")
            except BaseException:
                await self._teardown()
                raise
        except NetnsError as e:
            if os.geteuid() != 0 and not isinstance(e, (NetnsUnavailable, SubnetInUse)):
                raise NetnsUnavailable(e.command, e.returncode,
                                       f"{e.stderr} ({_ROOT_HINT})") from e
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._teardown()

    async def _teardown(self) -> None:
        with trio.CancelScope(shield=True):
            await remove_lab(self.prefix)
        self.hosts.clear()
        self._cut.clear()
        self._blocked.clear()

    async def _check_subnet_free(self) -> None:
        taken = []
        for info in json.loads(await _ip("-j", "-4", "addr", "show") or "[]"):
            for a in info.get("addr_info", []):
                net = ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}").network
                if net.overlaps(self.subnet) and not net.is_loopback:
                    taken.append(f"{info['ifname']} has {a['local']}/{a['prefixlen']}")
        for route in json.loads(await _ip("-j", "-4", "route", "show") or "[]"):
            dst = route.get("dst", "default")
            if dst != "default" and ipaddress.IPv4Network(dst, strict=False).overlaps(self.subnet):
                taken.append(f"route to {dst} via {route.get('dev', '?')}")
        if taken:
            raise SubnetInUse(["ip", "addr/route", "show"], None,
                              f"subnet {self.subnet} overlaps: {'; '.join(taken)} "
                              "(another lab running? pick another subnet)")

    # -- hosts ---------------------------------------------------------------------------------

    async def add_host(self, name: str) -> NetnsHost:
        """A new namespace `<prefix>-<name>` with `lo` and `eth0` up at the next free address."""
        if not _HOST_RE.fullmatch(name):
            raise ValueError(f"host name {name!r} must be 1-32 of [a-z0-9_-]")
        if name in self.hosts:
            raise ValueError(f"host {name!r} already exists")
        if not self._free:
            raise ValueError(f"subnet {self.subnet} is full ({len(self.hosts)} hosts)")
        index = len(self.hosts)
        host = NetnsHost(name=name, index=index, namespace=f"{self.prefix}-{name}",
                         address=str(self._free[0]), link=f"{self.prefix}-{index}")
        ns = host.namespace
        await _ip("netns", "add", ns)
        await _ip("link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        await _ip("link", "set", host.link, "master", self.bridge)
        await _ip("link", "set", host.link, "up")
        await _ip("-n", ns, "addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", "eth0")
        await _ip("-n", ns, "link", "set", "lo", "up")
        await _ip("-n", ns, "link", "set", "eth0", "up")
        self._free.pop(0)
        self.hosts[name] = host
        return host

    def _own(self, host: NetnsHost) -> NetnsHost:
        if self.hosts.get(host.name) != host:
            raise ValueError(f"{host.name!r} is not a host of lab {self.prefix!r}")
        return host

    # -- faults --------------------------------------------------------------------------------

    async def cut(self, host: NetnsHost) -> None:
        """Unplug `host`: no traffic to or from it, the test process included."""
        await _ip("link", "set", self._own(host).link, "down")
        self._cut.add(host.name)

    async def heal(self, host: NetnsHost) -> None:
        """Plug `host` back in; new connections to and from it work at once."""
        await _ip("link", "set", self._own(host).link, "up")
        # Neighbours left resolving the host's address during the cut would only send their next
        # ARP probe up to a second later: forget them, so the next packet asks again now. The
        # flush spares the permanent entries that `cut_between` pins.
        await _ip("-n", host.namespace, "neigh", "flush", "dev", "eth0")
        await _ip("neigh", "flush", "to", host.address, "dev", self.bridge)
        for other in self.hosts.values():
            if other != host:
                await _ip("-n", other.namespace, "neigh", "flush", "to", host.address)
        self._cut.discard(host.name)

    async def cut_between(self, a: NetnsHost, b: NetnsHost) -> None:
        """Drop all traffic between `a` and `b`, both ways; both still reach everyone else."""
        self._own(a), self._own(b)
        if a == b:
            raise ValueError("a host cannot be cut from itself")
        for src, dst in ((a, b), (b, a)):
            await _ip("-n", src.namespace, "neigh", "replace", dst.address, "lladdr", NOWHERE_MAC,
                      "dev", "eth0", "nud", "permanent")
        self._blocked.add(frozenset((a.name, b.name)))

    async def heal_between(self, a: NetnsHost, b: NetnsHost) -> None:
        """Undo `cut_between(a, b)` (the neighbours are learned again by ARP)."""
        self._own(a), self._own(b)
        for src, dst in ((a, b), (b, a)):
            await _ip("-n", src.namespace, "neigh", "del", dst.address, "dev", "eth0",
                      ok_if=_GONE)
        self._blocked.discard(frozenset((a.name, b.name)))

    async def partition(self, *groups: Iterable[NetnsHost]) -> None:
        """Split the hosts into `groups` that reach within themselves but not across.

        Hosts in no group are left alone; the test process reaches everyone.
        """
        sides = [list(g) for g in groups]
        seen = [h.name for side in sides for h in side]
        if len(seen) != len(set(seen)):
            raise ValueError("a host is in two groups")
        for i, side in enumerate(sides):
            for other in sides[i + 1:]:
                for a in side:
                    for b in other:
                        await self.cut_between(a, b)

    async def heal_all(self) -> None:
        """Undo every `cut` and every `cut_between` / `partition`."""
        for name in sorted(self._cut):
            await self.heal(self.hosts[name])
        for pair in list(self._blocked):
            a, b = sorted(pair)
            await self.heal_between(self.hosts[a], self.hosts[b])


async def remove_lab(prefix: str) -> None:
    """Remove everything named after `prefix`: kill processes left inside its namespaces, delete
    its links (veths, bridge) and namespaces. Safe to call when nothing is there."""
    namespaces = [n["name"] for n in json.loads(await _ip("-j", "netns", "list") or "[]")
                  if n["name"].startswith(f"{prefix}-")]
    for ns in namespaces:
        for pid in (await _ip("netns", "pids", ns, ok_if=_GONE)).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    # Deleting either end of a veth deletes both: the root side goes at once, whether or not
    # something still holds the namespace open.
    links = [link["ifname"] for link in json.loads(await _ip("-j", "link", "show") or "[]")
             if link["ifname"].startswith(f"{prefix}-")]
    for link in sorted(links, key=lambda name: name == f"{prefix}-br"):
        await _ip("link", "del", link, ok_if=_GONE)
    for ns in namespaces:
        await _ip("netns", "del", ns, ok_if=_GONE)


async def _ip(*args: str, ok_if: Sequence[str] = ()) -> str:
    """Run `ip *args`; its stdout, or NetnsError with its stderr (empty if it matches ok_if)."""
    command = ["ip", *args]
    try:
        with trio.fail_after(COMMAND_TIMEOUT_S):
            result = await trio.run_process(command, capture_stdout=True, capture_stderr=True,
                                            check=False)
    except FileNotFoundError as e:
        raise NetnsUnavailable(command, None, "`ip` not found: install iproute2") from e
    except trio.TooSlowError as e:
        raise NetnsError(command, None, f"no answer in {COMMAND_TIMEOUT_S} s") from e
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()
        if any(s in stderr for s in ok_if):
            return ""
        raise NetnsError(command, result.returncode, stderr)
    return result.stdout.decode()


# -- probing -------------------------------------------------------------------------------------

@functools.cache
def netns_unavailable_reason() -> str | None:
    """Why this machine cannot host a `NetnsLab`, or None when it can.

    Tries the real thing once per process (a namespace, a bridge, a veth pair between them) and
    removes it again, since "root" alone does not say a container lets us do it.
    """
    if not sys.platform.startswith("linux"):
        return f"network namespaces need Linux, not {sys.platform}"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    tag = f"nsprobe{os.getpid() % 100000}"
    ns, bridge, veth = tag, f"{tag}b", f"{tag}v"
    steps = [["netns", "add", ns],
             ["link", "add", bridge, "type", "bridge"],
             ["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns],
             ["link", "set", veth, "master", bridge],
             ["-n", ns, "link", "set", "eth0", "up"]]
    try:
        for step in steps:
            done = subprocess.run(["ip", *step], capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT_S, check=False)
            if done.returncode != 0:
                hint = f" ({_ROOT_HINT})" if os.geteuid() != 0 else ""
                return f"`ip {' '.join(step)}` failed: {done.stderr.strip()}{hint}"
        return None
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`ip` could not run: {e}"
    finally:
        for undo in (["link", "del", veth], ["link", "del", bridge], ["netns", "del", ns]):
            subprocess.run(["ip", *undo], capture_output=True, timeout=COMMAND_TIMEOUT_S,
                           check=False)


def netns_available() -> bool:
    return netns_unavailable_reason() is None
