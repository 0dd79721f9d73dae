"""`gonka genesis`: edit the genesis file of a home folder before the chain starts.

    gonka genesis add-account ADDRESS|KEYNAME AMOUNT
    gonka genesis add-validator [--pubkey HEX] [--name NAME] --power N --operator ADDRESS|KEYNAME
    gonka genesis validate
    gonka genesis show

AMOUNT is an integer of ngonka, or a number with a unit: `5000ngonka`, `12gonka`.
Without --pubkey, add-validator adds this home's own consensus key.
"""

from __future__ import annotations

import argparse
import re
import sys

from chain.crypto.address import is_valid_address
from chain.crypto.keystore import Keystore
from chain.node.config import ConfigError, load_config
from chain.node.home import NodeHome
from chain.node.setup import SetupError, add_account, add_validator, read_genesis, validator_key
from chain.types.codec import DecodeError
from chain.types.common import MAX_AMOUNT, NGONKA_PER_GONKA
from chain.types.genesis import dump_genesis
from tools.cli.command import CliError, add_home_option, home


def register(commands: argparse._SubParsersAction) -> None:
    genesis = commands.add_parser("genesis", help="edit the genesis file",
                                  description="Edit the genesis file of a home folder.")
    sub = genesis.add_subparsers(dest="genesis_command", required=True, metavar="COMMAND")

    acc = sub.add_parser("add-account", help="fund an account in the genesis")
    add_home_option(acc)
    acc.add_argument("account", help="an address, or the name of a key in this home's key store")
    acc.add_argument("amount", type=parse_amount, help="ngonka, or e.g. 5gonka")
    acc.set_defaults(run=_add_account)

    val = sub.add_parser("add-validator", help="add a validator to the genesis")
    add_home_option(val)
    val.add_argument("--pubkey", type=_pubkey, help="ed25519 consensus key, 64 hex (default: "
                     "this home's priv_validator_key.json)")
    val.add_argument("--name", help="a readable name (default: this home's moniker or the key)")
    val.add_argument("--power", type=int, required=True)
    val.add_argument("--operator", required=True, help="the operator's address or key name")
    val.set_defaults(run=_add_validator)

    for name, run, what in (("validate", _validate, "check that a chain can start from it"),
                            ("show", _show, "print it")):
        p = sub.add_parser(name, help=what)
        add_home_option(p)
        p.set_defaults(run=run)


_AMOUNT = re.compile(r"^(?P<n>\d+)(?P<unit>ngonka|gonka)?$")


def parse_amount(text: str) -> int:
    """ngonka from "123", "123ngonka" or "5gonka"; argparse.ArgumentTypeError otherwise."""
    m = _AMOUNT.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r} (e.g. 1000, 1000ngonka, 5gonka)")
    value = int(m["n"]) * (NGONKA_PER_GONKA if m["unit"] == "gonka" else 1)
    if value > MAX_AMOUNT:
        raise argparse.ArgumentTypeError(f"amount {text!r} exceeds the maximum {MAX_AMOUNT}")
    return value


def _pubkey(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError("--pubkey must be 64 hex characters") from None
    if len(raw) != 32:
        raise argparse.ArgumentTypeError("--pubkey must be 32 bytes (64 hex characters)")
    return raw


def resolve_account(node: NodeHome, text: str) -> str:
    """An address as given, or the address of the key named `text` in the home's key store."""
    if is_valid_address(text):
        return text
    store = Keystore(node.root)
    if store.exists(text):
        return store.show(text).address
    raise CliError(f"{text!r} is neither a valid gonka address nor a key in {store.dir}")


def _add_account(args: argparse.Namespace) -> int:
    node = NodeHome(home(args))
    address = resolve_account(node, args.account)
    try:
        add_account(node, address, args.amount)
    except (SetupError, DecodeError) as e:
        raise CliError(str(e)) from None
    print(f"funded {address} with {args.amount} ngonka")
    return 0


def _add_validator(args: argparse.Namespace) -> int:
    node = NodeHome(home(args))
    if args.power < 1:
        raise CliError("--power must be at least 1")
    operator = resolve_account(node, args.operator)
    try:
        if args.pubkey is None:  # this home's own validator, named after the node
            pubkey, name = validator_key(node).public_key, load_config(node.config_file).moniker
        else:
            pubkey, name = args.pubkey, args.pubkey.hex()[:16]
        name = args.name or name
        add_validator(node, name=name, pubkey=pubkey, power=args.power, operator=operator)
    except (SetupError, DecodeError, ConfigError) as e:
        raise CliError(str(e)) from None
    print(f"added validator {name} ({pubkey.hex()}) with power {args.power}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    try:
        genesis = read_genesis(NodeHome(home(args)))
        genesis.validate()
    except (SetupError, DecodeError) as e:
        raise CliError(str(e)) from None
    print(f"genesis of {genesis.chain_id} is valid: {len(genesis.validators)} validators, "
          f"{len(genesis.accounts)} accounts")
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        genesis = read_genesis(NodeHome(home(args)))
    except (SetupError, DecodeError) as e:
        raise CliError(str(e)) from None
    sys.stdout.write(dump_genesis(genesis).decode())
    return 0
