"""`gonka devnet` as a user runs it: a process that produces blocks, answers on its RPC, accepts
a transfer from the developer account, and stops cleanly on Ctrl-C (SIGINT)."""

from __future__ import annotations

import signal
import subprocess

import pytest
import trio

from chain.node.home import NodeHome
from chain.rpc.client import RpcClient
from testermint_py.cluster import free_ports, gonka_command

pytestmark = pytest.mark.slow


async def test_devnet_runs_a_chain_until_ctrl_c(tmp_path):
    home = tmp_path / "devnet"
    gonka = gonka_command()
    subprocess.run([*gonka, "devnet", "--home", str(home), "--init-only"], check=True,
                   capture_output=True)
    # Own ports, so that the test does not depend on 26656/26657 being free.
    p2p, rpc = free_ports(2)
    config = NodeHome(home).config_file
    text = config.read_text().replace("127.0.0.1:26656", f"127.0.0.1:{p2p}")
    config.write_text(text.replace("127.0.0.1:26657", f"127.0.0.1:{rpc}"))
    url = f"http://127.0.0.1:{rpc}"
    proc = subprocess.Popen([*gonka, "devnet", "--home", str(home)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        async with RpcClient(url, timeout=5) as client:
            with trio.fail_after(60):
                while True:
                    try:
                        if (await client.status()).latest_height >= 2:
                            break
                    except Exception:  # noqa: BLE001 - not up yet
                        pass
                    await trio.sleep(0.2)
        bob = "gonka19rl4cm2hmr8afy4kldpxz3fka4jguq0av42rch"
        sent = subprocess.run([*gonka, "tx", "send", "developer", bob, "5gonka", "--home",
                               str(home), "--node", url], capture_output=True, text=True)
        assert sent.returncode == 0, sent.stderr
        async with RpcClient(url) as client:
            assert (await client.query("bank/balance", address=bob))["amount"] == 5 * 10**9
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()
    assert b"chain RPC:" in out and b"devnet stopping at height" in out
