"""`gonka chain init` and `gonka genesis ...` through main([...]): a home folder a node can start
from, and clear errors for everything else."""

from __future__ import annotations

import json
import stat

from chain.crypto.node_key import load_node_key
from chain.node.config import load_config
from chain.node.home import NodeHome
from chain.node.setup import read_genesis
from chain.types.genesis import load_genesis

ALICE = "gonka19rl4cm2hmr8afy4kldpxz3fka4jguq0av42rch"


def test_init_then_genesis_edits_give_a_startable_genesis(gonka, tmp_path):
    root = tmp_path / "node0"
    # Given a fresh home,
    init = gonka("chain", "init", "--home", str(root), "--chain-id", "test-1", "--moniker", "v0",
                 "-o", "json")
    assert init.code == 0, init.err
    info = json.loads(init.out)
    node = NodeHome(root)
    # the keys, config and genesis exist, keys private,
    assert info["node_id"] == load_node_key(node.node_key_file).id.hex()
    assert info["validator_pubkey"] == load_node_key(node.validator_key_file).public_key.hex()
    assert stat.S_IMODE(node.validator_key_file.stat().st_mode) == 0o600
    assert load_config(node.config_file).moniker == "v0"
    # and a genesis without validators is not startable yet.
    assert gonka("genesis", "validate", "--home", str(root)).error.endswith(
        "at least one validator is needed")
    # When an operator key, an account and this node's validator are added,
    assert gonka("keys", "add", "op", "--keyring-backend", "test", "--home", str(root)).code == 0
    assert gonka("genesis", "add-account", ALICE, "5gonka", "--home", str(root)).code == 0
    assert gonka("genesis", "add-account", ALICE, "7", "--home", str(root)).code == 0
    assert gonka("genesis", "add-account", "op", "1000ngonka", "--home", str(root)).code == 0
    assert gonka("genesis", "add-validator", "--power", "10", "--operator", "op",
                 "--home", str(root)).code == 0
    # then the genesis validates and says exactly that.
    assert gonka("genesis", "validate", "--home", str(root)).code == 0
    genesis = load_genesis(node.genesis_file)
    assert genesis.chain_id == "test-1"
    assert {a.address: a.balance for a in genesis.accounts}[ALICE] == 5_000_000_007
    [v] = genesis.validators
    assert (v.name, v.power, v.pubkey.hex()) == ("v0", 10, info["validator_pubkey"])


def test_init_takes_a_params_profile(gonka, tmp_path):
    default = gonka("chain", "init", "--home", str(tmp_path / "a"), "--chain-id", "t-1")
    assert default.code == 0, default.err
    mainnet = read_genesis(NodeHome(tmp_path / "a")).app_params
    assert mainnet["poc"]["param_set"] == "mainnet"
    assert gonka("chain", "init", "--home", str(tmp_path / "b"), "--chain-id", "t-1",
                 "--profile", "devnet").code == 0
    devnet = read_genesis(NodeHome(tmp_path / "b")).app_params
    assert devnet["epochs"]["epoch_length"] == 40
    refused = gonka("chain", "init", "--home", str(tmp_path / "c"), "--chain-id", "t-1",
                    "--profile", "moon")
    assert refused.code == 2 and "moon" in refused.err
    assert not (tmp_path / "c").exists()


def test_init_refuses_an_initialised_home_and_keeps_its_keys(gonka, tmp_path):
    root = str(tmp_path / "n")
    assert gonka("chain", "init", "--home", root, "--chain-id", "c").code == 0
    key = gonka("chain", "show-validator", "--home", root).out
    assert "initialised already" in gonka("chain", "init", "--home", root, "--chain-id", "c").error
    # --overwrite rewrites config and genesis but never the validator key.
    assert gonka("chain", "init", "--home", root, "--chain-id", "d", "--overwrite").code == 0
    assert gonka("chain", "show-validator", "--home", root).out == key


def test_bad_input_is_one_clear_error_and_changes_nothing(gonka, tmp_path):
    root = str(tmp_path / "n")
    assert "invalid chain id" in gonka("chain", "init", "--home", root, "--chain-id", "a b").error
    assert gonka("chain", "init", "--home", root, "--chain-id", "c").code == 0
    before = (tmp_path / "n" / "config" / "genesis.json").read_bytes()
    assert "neither a valid gonka address" in gonka(
        "genesis", "add-account", "nobody", "5", "--home", root).error
    assert "neither a valid gonka address" in gonka(
        "genesis", "add-account", ALICE.upper(), "5", "--home", root).error
    assert gonka("genesis", "add-account", ALICE, "5 coins", "--home", root).code == 2
    assert gonka("genesis", "add-account", ALICE, str(2**63), "--home", root).code == 2
    assert gonka("genesis", "add-validator", "--power", "0", "--operator", ALICE,
                 "--home", root).error == "error: --power must be at least 1"
    assert gonka("genesis", "add-validator", "--pubkey", "abcd", "--power", "1",
                 "--operator", ALICE, "--home", root).code == 2
    assert (tmp_path / "n" / "config" / "genesis.json").read_bytes() == before
    # The same validator key twice is refused.
    args = ("genesis", "add-validator", "--power", "1", "--operator", ALICE, "--home", root)
    assert gonka(*args).code == 0
    assert "in the genesis already" in gonka(*args).error


def test_a_corrupt_genesis_is_named_in_the_error(gonka, tmp_path):
    root = tmp_path / "n"
    assert gonka("chain", "init", "--home", str(root), "--chain-id", "c").code == 0
    (root / "config" / "genesis.json").write_text('{"chain_id": 5}')
    err = gonka("genesis", "validate", "--home", str(root)).error
    assert "cannot decode Genesis" in err and "chain_id" in err


def test_start_refuses_a_bad_config_with_one_line_naming_the_file(gonka, tmp_path):
    root = tmp_path / "n"
    assert gonka("chain", "init", "--home", str(root), "--chain-id", "c").code == 0
    # No validator yet: the genesis cannot start a chain.
    assert "at least one validator is needed" in gonka("chain", "start", "--home", str(root)).error
    assert gonka("genesis", "add-validator", "--power", "1", "--operator", ALICE,
                 "--home", str(root)).code == 0
    config = root / "config" / "config.toml"
    text = config.read_text()
    config.write_text(text.replace("persistent_peers = []", 'persistent_peers = ["nothex@h:1"]'))
    err = gonka("chain", "start", "--home", str(root)).error
    assert str(config) in err and "invalid peer address 'nothex@h:1'" in err
    config.write_text(text.replace('listen = "127.0.0.1:26657"', 'listen = "nowhere"'))
    err = gonka("chain", "start", "--home", str(root)).error
    assert "rpc.listen: expected host:port, got 'nowhere'" in err
