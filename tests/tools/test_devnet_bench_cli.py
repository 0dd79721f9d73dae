"""`gonka devnet` (as far as it is built) and `gonka bench native`, through main([...])."""

from __future__ import annotations

import re

from chain.node.home import NodeHome
from chain.types.genesis import load_genesis


def test_devnet_home_has_one_funded_developer_and_one_validator(gonka, tmp_path):
    home = tmp_path / "devnet"
    first = gonka("devnet", "--home", str(home), "--init-only")
    assert first.code == 0, first.err
    address = re.search(r"developer account:\s+(gonka1\w+)", first.out).group(1)
    genesis = load_genesis(NodeHome(home).genesis_file)
    assert genesis.chain_id == "gonka-devnet" and len(genesis.validators) == 1
    # The devnet runs the devnet params profile: short epochs, the small PoC function
    assert genesis.app_params["epochs"]["epoch_length"] == 40
    assert genesis.app_params["poc"]["param_set"] == "test"
    assert {a.address: a.balance for a in genesis.accounts}[address] > 0
    # Run again: the same account, not a new one.
    again = gonka("devnet", "--home", str(home), "--init-only")
    assert re.search(r"developer account:\s+(gonka1\w+)", again.out).group(1) == address
    # Its key is stored unencrypted in the devnet home and exports without a passphrase.
    shown = gonka("keys", "show", "developer", "--address", "--home", str(home))
    assert shown.out.strip() == address
    exported = gonka("keys", "export", "developer", "--home", str(home))
    assert re.fullmatch(r"[0-9a-f]{64}\n", exported.out)


def test_bench_native_prints_each_figure_with_a_ratio(gonka):
    result = gonka("bench", "native", "--signatures", "40", "--leaves", "100", "--repeat", "1")
    assert result.code == 0, result.err
    rows = [line for line in result.out.splitlines() if "ratio" in line]
    assert len(rows) == 4
    names = [r.split()[0] for r in rows]
    assert names == ["secp256k1", "secp256k1", "ed25519", "Merkle"]
    for row in rows:
        assert float(re.search(r"ratio\s+([\d.]+)x", row).group(1)) > 0


def test_bench_rejects_nonsense_sizes(gonka):
    assert gonka("bench", "native", "--leaves", "0").code == 2
    assert gonka("bench", "native", "--signatures", "many").code == 2
    assert gonka("bench").code == 2
