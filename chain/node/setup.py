"""Creating a node's home folder and editing its genesis file: what `gonka chain init` and
`gonka genesis ...` do, as functions the harness and the devnet call too.

A multi-node network: every node runs `init` with the same chain id; one genesis collects every
node's validator (`add_validator` with each node's consensus public key) and the funded accounts;
that one file is copied to every home. Nothing here starts a process or touches the network.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec

from chain.app.profiles import profile_params
from chain.crypto import ed25519
from chain.crypto.errors import KeyExists
from chain.crypto.node_key import load_node_key, save_node_key
from chain.crypto.private_files import ensure_private_dir, write_private_file
from chain.node.config import NodeConfig, render_config
from chain.node.home import NodeHome
from chain.types.codec import from_json
from chain.types.common import MAX_AMOUNT
from chain.types.genesis import (
    MAX_GENESIS_BYTES,
    Genesis,
    GenesisAccount,
    GenesisValidator,
    dump_genesis,
)


class SetupError(ValueError):
    """A home folder or genesis edit that cannot be done; the message says why."""


def init_home(root: Path, chain_id: str, *, moniker: str = "node",
              config: NodeConfig | None = None, overwrite: bool = False,
              profile: str = "mainnet") -> NodeHome:
    """Create config.toml, genesis.json (no validators or accounts yet; the app params of
    `profile`, see chain.app.profiles) and the two node keys.

    Refuses (SetupError) to touch a home that already has a config, unless `overwrite`; existing
    key files are always kept (a validator key must never be replaced by accident).
    """
    home = NodeHome(Path(root))
    if home.config_file.exists() and not overwrite:
        raise SetupError(f"{home.config_file} exists; this home is initialised already")
    try:
        app_params = profile_params(profile)
    except KeyError as e:
        raise SetupError(str(e.args[0])) from None
    genesis = Genesis(chain_id=chain_id, genesis_time_ns=time.time_ns(), app_params=app_params)
    try:
        msgspec.convert(msgspec.to_builtins(genesis), Genesis)  # chain id pattern and limits
    except msgspec.ValidationError as e:
        raise SetupError(f"invalid chain id {chain_id!r}: {e}") from None
    ensure_private_dir(home.root)
    ensure_private_dir(home.config_dir)
    ensure_private_dir(home.data_dir)
    for path in (home.node_key_file, home.validator_key_file):
        try:
            save_node_key(path, ed25519.PrivateKey.generate())
        except KeyExists:
            pass
    config = config or NodeConfig()
    config = msgspec.structs.replace(config, moniker=moniker)
    _write_atomically(home.config_file, render_config(config).encode())
    _write_atomically(home.genesis_file, dump_genesis(genesis))
    return home


def read_genesis(home: NodeHome) -> Genesis:
    """The home's genesis, decoded (not yet checked for startability: see Genesis.validate)."""
    try:
        data = home.genesis_file.read_bytes()
    except FileNotFoundError:
        raise SetupError(f"{home.genesis_file} not found (run `gonka chain init` first)") from None
    return from_json(data, Genesis, max_size=MAX_GENESIS_BYTES)


def write_genesis(home: NodeHome, genesis: Genesis) -> None:
    _write_atomically(home.genesis_file, dump_genesis(genesis))


def add_account(home: NodeHome, address: str, amount: int) -> Genesis:
    """Fund `address` with `amount` ngonka in the genesis (added to an existing entry)."""
    genesis = read_genesis(home)
    accounts = list(genesis.accounts)
    for i, acc in enumerate(accounts):
        if acc.address == address:
            total = acc.balance + amount
            if total > MAX_AMOUNT:
                raise SetupError(f"balance of {address} would exceed {MAX_AMOUNT}")
            accounts[i] = GenesisAccount(address=address, balance=total)
            break
    else:
        accounts.append(GenesisAccount(address=address, balance=amount))
    genesis = msgspec.structs.replace(genesis, accounts=tuple(accounts))
    _check(genesis)
    write_genesis(home, genesis)
    return genesis


def add_validator(home: NodeHome, *, name: str, pubkey: bytes, power: int,
                  operator: str) -> Genesis:
    """Add a validator; SetupError if its name or key is in the genesis already."""
    genesis = read_genesis(home)
    if any(v.pubkey == pubkey for v in genesis.validators):
        raise SetupError(f"validator key {pubkey.hex()} is in the genesis already")
    if any(v.name == name for v in genesis.validators):
        raise SetupError(f"a validator named {name!r} is in the genesis already")
    validator = GenesisValidator(name=name, pubkey=pubkey, power=power, operator=operator)
    genesis = msgspec.structs.replace(genesis, validators=genesis.validators + (validator,))
    _check(genesis)
    write_genesis(home, genesis)
    return genesis


def validator_key(home: NodeHome) -> ed25519.PrivateKey:
    return load_node_key(home.validator_key_file)


def node_key(home: NodeHome) -> ed25519.PrivateKey:
    return load_node_key(home.node_key_file)


def _check(genesis: Genesis) -> None:
    # The same rules a decoder applies (ranges, lengths), since values here come from Python.
    try:
        msgspec.convert(msgspec.to_builtins(genesis), Genesis)
    except msgspec.ValidationError as e:
        raise SetupError(f"the genesis would be invalid: {e}") from None


def _write_atomically(path: Path, data: bytes) -> None:
    """Config and genesis are public: the key files' atomic write (temp file, fsync, rename,
    fsync of the folder), then opened up to 0644."""
    write_private_file(path, data)
    os.chmod(path, 0o644)
