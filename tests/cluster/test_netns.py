"""The `netns` backend's network: hosts with their own addresses that reach each other and the
test process over TCP, cuts that stop traffic (new and established connections) until healed, and
a teardown that leaves nothing behind, even after a failure or a test killed mid-way.

Servers and probes are real processes inside the namespaces (via `host.command`). A refused
echo is checked with a 1 s connect/receive timeout: a hang guard, not a timing assertion.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial

import pytest
import trio

from testermint_py.netns import (
    NetnsError,
    NetnsHost,
    NetnsLab,
    NetnsUnavailable,
    SubnetInUse,
    netns_available,
    netns_unavailable_reason,
)

pytestmark = pytest.mark.skipif(not netns_available(), reason=str(netns_unavailable_reason()))

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PORT = 7000
FAIL_S = 1.0   # how long a cut connection is given to (wrongly) answer
OK_S = 10.0    # a healthy one answers in milliseconds; this only guards against a hang

# An echo server on 0.0.0.0:PORT; says "listening" once it accepts.
ECHO = """
import socketserver, sys
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(1024):
            self.request.sendall(data)
socketserver.ThreadingTCPServer.allow_reuse_address = True
server = socketserver.ThreadingTCPServer(("0.0.0.0", int(sys.argv[1])), Echo)
server.daemon_threads = True
print("listening", flush=True)
server.serve_forever()
"""

# Reads "connect|echo ADDRESS PORT TIMEOUT" lines; pings ADDRESS over a new connection ("connect")
# or the last one ("echo") and prints "ok" or the error.
PROBE = """
import socket, sys
conn = None
for line in sys.stdin:
    cmd, address, port, timeout = line.split()
    try:
        if cmd == "connect":
            if conn is not None:
                conn.close()
            conn = socket.create_connection((address, int(port)), timeout=float(timeout))
        conn.settimeout(float(timeout))
        conn.sendall(b"ping")
        reply = conn.recv(4)
        print("ok" if reply == b"ping" else f"bad reply {reply!r}", flush=True)
    except OSError as e:
        print(f"{type(e).__name__}: {e}", flush=True)
"""


async def _read_line(stream: trio.abc.ReceiveStream, timeout: float) -> str:
    data = b""
    with trio.fail_after(timeout):
        while not data.endswith(b"\n"):
            chunk = await stream.receive_some(1)
            if not chunk:
                raise AssertionError(f"process closed its stdout after {data!r}")
            data += chunk
    return data.decode().strip()


async def _spawn(argv: list[str], *, stdin: bool = False) -> trio.Process:
    return await trio.lowlevel.open_process(
        argv, stdout=subprocess.PIPE, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL)


async def _stop(proc: trio.Process) -> None:
    with trio.CancelScope(shield=True):
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def _echo_server(host: NetnsHost) -> trio.Process:
    proc = await _spawn(host.command(sys.executable, "-c", ECHO, str(PORT)))
    assert await _read_line(proc.stdout, OK_S) == "listening"
    return proc


class Probe:
    """A client process inside `host`, pinging echo servers on request."""

    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, host: NetnsHost) -> Probe:
        return cls(await _spawn(host.command(sys.executable, "-c", PROBE), stdin=True))

    async def ping(self, target: NetnsHost, *, new: bool = True, timeout: float = OK_S) -> str:
        cmd = "connect" if new else "echo"
        await self.proc.stdin.send_all(f"{cmd} {target.address} {PORT} {timeout}\n".encode())
        return await _read_line(self.proc.stdout, timeout + OK_S)


class RootConnection:
    """A connection from the test process (the root namespace) to a host's echo server."""

    def __init__(self, stream: trio.SocketStream | None) -> None:
        self.stream = stream

    @classmethod
    async def open(cls, target: NetnsHost, timeout: float = OK_S) -> RootConnection:
        with trio.move_on_after(timeout):
            try:
                return cls(await trio.open_tcp_stream(target.address, PORT))
            except OSError:
                pass
        return cls(None)

    async def echo(self, timeout: float = OK_S) -> bool:
        if self.stream is None:
            return False
        with trio.move_on_after(timeout):
            await self.stream.send_all(b"ping")
            return await self.stream.receive_some(4) == b"ping"
        return False


async def _root_ping(target: NetnsHost, timeout: float = OK_S) -> bool:
    conn = await RootConnection.open(target, timeout)
    try:
        return await conn.echo(timeout)
    finally:
        if conn.stream is not None:
            await conn.stream.aclose()


def _leftovers(prefix: str) -> list[str]:
    """Namespaces and root-namespace links named after `prefix`."""
    def ip_json(*args: str) -> list[dict]:
        return json.loads(subprocess.run(["ip", "-j", *args], capture_output=True, text=True,
                                         check=True).stdout or "[]")
    return ([f"netns {n['name']}" for n in ip_json("netns", "list")
             if n["name"].startswith(f"{prefix}-")]
            + [f"link {n['ifname']}" for n in ip_json("link", "show")
               if n["ifname"].startswith(f"{prefix}-")])


@pytest.fixture
async def processes():
    """Processes the test starts; killed and reaped at the end whatever happens."""
    procs: list[trio.Process] = []
    yield procs
    for p in procs:
        await _stop(p)


async def test_hosts_have_own_addresses_and_reach_each_other_and_the_test_process(processes):
    async with NetnsLab("tmreach", "10.77.10.0/24") as lab:
        # Given two hosts, each with an echo server on the same port of its own address
        a, b = await lab.add_host("a"), await lab.add_host("b")
        assert (lab.gateway, a.address, b.address) == ("10.77.10.1", "10.77.10.2", "10.77.10.3")
        processes += [await _echo_server(a), await _echo_server(b)]
        probe_a, probe_b = await Probe.start(a), await Probe.start(b)
        processes += [probe_a.proc, probe_b.proc]

        # Then each reaches the other, and the test process reaches both
        assert await probe_b.ping(a) == "ok"
        assert await probe_a.ping(b) == "ok"
        assert await _root_ping(a) and await _root_ping(b)

        # And inside a host there is only lo and eth0 with the host's address
        shown = subprocess.run(a.command("ip", "-j", "-4", "addr", "show"), capture_output=True,
                               text=True, check=True).stdout
        addrs = {i["ifname"]: [x["local"] for x in i["addr_info"]] for i in json.loads(shown)}
        assert addrs == {"lo": ["127.0.0.1"], "eth0": [a.address]}
    assert _leftovers("tmreach") == []


async def test_cut_host_is_unreachable_until_healed(processes):
    async with NetnsLab("tmcut", "10.77.11.0/24") as lab:
        # Given a's echo server, reached from b and from the test process
        a, b = await lab.add_host("a"), await lab.add_host("b")
        processes.append(await _echo_server(a))
        probe = await Probe.start(b)
        processes.append(probe.proc)
        assert await probe.ping(a) == "ok"
        established = await RootConnection.open(a)
        assert await established.echo()

        # When a is cut
        await lab.cut(a)

        # Then new connections from b and from the test process, and the established one, fail
        async with trio.open_nursery() as nursery:
            results: dict[str, object] = {}

            async def check(key, attempt):
                results[key] = await attempt()
            nursery.start_soon(check, "b", partial(probe.ping, a, timeout=FAIL_S))
            nursery.start_soon(check, "root", partial(_root_ping, a, FAIL_S))
            nursery.start_soon(check, "established", partial(established.echo, FAIL_S))
        assert results["b"] != "ok"
        assert results["root"] is False
        assert results["established"] is False
        await established.stream.aclose()

        # When it is healed, both reach it again
        await lab.heal(a)
        assert await probe.ping(a) == "ok"
        assert await _root_ping(a)


async def test_cut_between_and_partition_keep_the_test_process_connected(processes):
    async with NetnsLab("tmpart", "10.77.12.0/24") as lab:
        # Given a's echo server, reached from b (also over a kept connection) and from c
        a, b, c = [await lab.add_host(n) for n in "abc"]
        processes.append(await _echo_server(a))
        probe_b, probe_c = await Probe.start(b), await Probe.start(c)
        processes += [probe_b.proc, probe_c.proc]
        assert await probe_b.ping(a) == "ok"
        assert await probe_c.ping(a) == "ok"

        # When a and b are cut from each other
        await lab.cut_between(a, b)

        # Then b's kept connection stalls and a new one fails, while c and the test process
        # still reach a
        assert await probe_b.ping(a, new=False, timeout=FAIL_S) != "ok"
        assert await probe_b.ping(a, timeout=FAIL_S) != "ok"
        assert await probe_c.ping(a) == "ok"
        assert await _root_ping(a)

        # When healed, b reaches a again
        await lab.heal_between(a, b)
        assert await probe_b.ping(a) == "ok"

        # And a partition {a} | {b, c} separates a from both (a cut and heal of a in between
        # leaves it in force), until heal_all
        await lab.partition([a], [b, c])
        await lab.cut(a)
        await lab.heal(a)
        assert await probe_c.ping(a, timeout=FAIL_S) != "ok"
        assert await _root_ping(a)
        await lab.heal_all()
        assert await probe_b.ping(a) == "ok"
        assert await probe_c.ping(a) == "ok"


async def test_teardown_after_a_failure_removes_everything_and_kills_leftovers():
    # Given a lab with hosts, a cut, and a process still running in a namespace
    with pytest.raises(RuntimeError, match="test failed"):
        async with NetnsLab("tmdown", "10.77.13.0/24") as lab:
            a, b = await lab.add_host("a"), await lab.add_host("b")
            await lab.cut(a)
            await lab.cut_between(a, b)
            sleeper = await trio.lowlevel.open_process(b.command("sleep", "600"))
            assert len(_leftovers("tmdown")) == 5  # 2 namespaces, 2 veths, the bridge
            # When the test fails inside it
            raise RuntimeError("test failed")
    # Then nothing named after the lab is left, and the process was killed
    assert _leftovers("tmdown") == []
    with trio.fail_after(OK_S):
        assert await sleeper.wait() == -9


async def test_a_stale_lab_of_the_same_prefix_is_removed_at_setup():
    # Given a lab whose test died without tearing it down
    stale = NetnsLab("tmstale", "10.77.14.0/24")
    await stale.__aenter__()
    await stale.add_host("a")
    await stale.add_host("b")
    assert _leftovers("tmstale")

    # When a new lab with the same prefix (and subnet) starts, it works
    async with NetnsLab("tmstale", "10.77.14.0/24") as lab:
        a = await lab.add_host("a")
        assert a.address == "10.77.14.2"
        assert sorted(_leftovers("tmstale")) == ["link tmstale-0", "link tmstale-br",
                                                 "netns tmstale-a"]
    assert _leftovers("tmstale") == []


async def test_overlapping_subnet_and_bad_names_are_refused():
    async with NetnsLab("tmover", "10.77.15.0/24") as lab:
        # A second lab on the same subnet would steal the routes: refused, and it leaves nothing
        with pytest.raises(SubnetInUse, match="tmover-br has 10.77.15.1/24"):
            async with NetnsLab("tmover2", "10.77.15.128/25"):
                pass
        assert _leftovers("tmover2") == []
        with pytest.raises(ValueError, match="host name"):
            await lab.add_host("has space")
        a = await lab.add_host("a")
        with pytest.raises(ValueError, match="already exists"):
            await lab.add_host("a")
        with pytest.raises(ValueError, match="cut from itself"):
            await lab.cut_between(a, a)
    with pytest.raises(ValueError, match="prefix"):
        NetnsLab("much-too-long-prefix")


@pytest.mark.skipif(os.geteuid() != 0, reason="checks what a non-root user is told; needs root")
def test_not_root_gets_a_typed_error_with_the_stderr():
    # A child process as `nobody` tries to open a lab
    code = ("import trio\n"
            "from testermint_py.netns import NetnsLab, NetnsUnavailable, netns_available\n"
            "async def main():\n"
            "    try:\n"
            "        async with NetnsLab('tmnobody', '10.77.16.0/24'):\n"
            "            print('opened')\n"
            "    except NetnsUnavailable as e:\n"
            "        print(type(e).__name__, e.command, e.stderr)\n"
            "trio.run(main)\n"
            "print('available', netns_available())\n")
    # -S: without site, the venv's editable loader (which would rebuild the native extension as
    # `nobody`) stays out; trio comes from site-packages on PYTHONPATH instead.
    site_packages = os.path.dirname(os.path.dirname(trio.__file__))
    done = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           "--inh-caps=-all", sys.executable, "-S", "-c", code],
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": f"{REPO}:{site_packages}"})
    assert done.returncode == 0, done.stderr
    assert "NetnsUnavailable ['ip', 'link', 'add', 'tmnobody-br'" in done.stdout
    assert "Operation not permitted" in done.stdout and "needs root" in done.stdout
    assert "available False" in done.stdout
    assert _leftovers("tmnobody") == []


def test_error_carries_command_status_and_stderr():
    e = NetnsError(["ip", "link", "del", "x"], 1, 'Cannot find device "x"')
    assert (e.command, e.returncode, e.stderr) == (["ip", "link", "del", "x"], 1,
                                                     'Cannot find device "x"')
    assert str(e) == '`ip link del x` failed (exit 1): Cannot find device "x"'
    assert isinstance(NetnsUnavailable([], None, "no ip"), NetnsError)
