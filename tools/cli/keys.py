"""`gonka keys`: account keys in the key store of the home folder (chain.crypto.keystore).

    gonka keys add NAME [--recover] [--keyring-backend file|test] [--overwrite]
    gonka keys import NAME            (a raw private key, as printed by `keys export`)
    gonka keys list | show NAME [--address] | export NAME [--mnemonic] | delete NAME [--yes]

`--keyring-backend file` (the default) encrypts the key with a passphrase; `test` stores it
unencrypted and never asks, for throwaway keys only. Which one a stored key uses is recorded in
its file, so the other commands need no backend flag.

Secrets go to stdout only when the user asked for them (the mnemonic of a new key, `export`), so
scripts can capture them; prompts and warnings go to stderr. This module must never print a
secret anywhere else, or put one in an error message.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import msgspec

from chain.crypto import secp256k1
from chain.crypto.errors import KeyExists, KeyNotFound
from chain.crypto.keystore import KDF_ENV, KDF_PRESETS, KeyInfo, Keystore, check_key_name
from chain.crypto.mnemonic import validate_mnemonic
from tools.cli import prompt
from tools.cli.command import CliError, add_home_option, add_output_option, home, print_json

MNEMONIC_WARNING = (
    "**Important** write this mnemonic phrase down and keep it in a safe place.\n"
    "It is the only way to recover this account if the key file or its passphrase is lost."
)


def register(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser(
        "keys", help="manage account keys", description="Manage the account keys of a home folder."
    )
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")

    add = _command(sub, "add", _add, "create a key, or recover one from its mnemonic")
    add.add_argument("name")
    add.add_argument("--recover", action="store_true", help="read an existing BIP-39 mnemonic")
    for part in ("account", "index"):
        add.add_argument(
            f"--{part}", type=_path_part, default=0, help="HD path m/44'/118'/ACCOUNT'/0/INDEX"
        )
    _add_store_options(add)
    add_output_option(add)

    imp = _command(sub, "import", _import, "store a raw private key (64 hex, as `export` prints)")
    imp.add_argument("name")
    _add_store_options(imp)
    add_output_option(imp)

    listing = _command(sub, "list", _list, "list the stored keys")
    add_output_option(listing)

    show = _command(sub, "show", _show, "show a key's address and public key")
    show.add_argument("name")
    show.add_argument("-a", "--address", action="store_true", help="print only the address")
    add_output_option(show)

    export = _command(sub, "export", _export, "print the private key (hex) of a key")
    export.add_argument("name")
    export.add_argument("--mnemonic", action="store_true", help="print the mnemonic instead")

    delete = _command(sub, "delete", _delete, "delete a key")
    delete.add_argument("name")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def _command(
    sub: argparse._SubParsersAction, name: str, run: Callable[[argparse.Namespace], int], help: str
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
    add_home_option(parser)
    parser.set_defaults(run=run)
    return parser


def _path_part(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**31), got {text!r}")
    return value


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keyring-backend",
        choices=("file", "test"),
        default="file",
        help="file: encrypted with a passphrase (default); test: unencrypted, for test keys only",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a key of the same name")


# -- commands


def _add(args: argparse.Namespace) -> int:
    store = _store_for_new_key(args)
    mnemonic = None
    if args.recover:
        text = prompt.read_secret("Enter your BIP-39 mnemonic: ", "the mnemonic")
        mnemonic = validate_mnemonic(text)  # before asking for a passphrase
    passphrase = _new_passphrase(args, store)
    if mnemonic is None:
        info, new_mnemonic = store.add_new(
            args.name, passphrase, account=args.account, index=args.index, overwrite=args.overwrite
        )
    else:
        new_mnemonic = None
        info = store.add_recovered(
            args.name,
            mnemonic,
            passphrase,
            account=args.account,
            index=args.index,
            overwrite=args.overwrite,
        )
    _print_key(info, args.output, mnemonic=new_mnemonic)
    return 0


def _import(args: argparse.Namespace) -> int:
    store = _store_for_new_key(args)
    text = prompt.read_secret("Enter the private key (64 hex characters): ", "the private key")
    key = secp256k1.PrivateKey.from_hex(text)
    passphrase = _new_passphrase(args, store)
    info = store.add_private_key(args.name, key.secret, passphrase, overwrite=args.overwrite)
    _print_key(info, args.output)
    return 0


def _list(args: argparse.Namespace) -> int:
    store = Keystore(home(args))
    infos = store.list()
    if args.output == "json":
        print_json([_public(info) for info in infos])
    elif not infos:
        print(f"no keys in {store.dir}", file=sys.stderr)
    else:
        rows = [("NAME", "ADDRESS", "BACKEND")]
        rows += [(i.name, i.address, _backend(i)) for i in infos]
        width = max(len(row[0]) for row in rows)
        for name, address, backend in rows:
            print(f"{name:<{width}}  {address:<44}  {backend}")
    return 0


def _show(args: argparse.Namespace) -> int:
    info = Keystore(home(args)).show(args.name)
    if args.address:
        print(info.address)
    else:
        _print_key(info, args.output)
    return 0


def _export(args: argparse.Namespace) -> int:
    store = Keystore(home(args))
    info = store.show(args.name)
    passphrase = prompt.passphrase_for(info.name) if info.encrypted else None
    if args.mnemonic:
        mnemonic = store.load_mnemonic(info.name, passphrase)
        if mnemonic is None:
            raise CliError(f"key {info.name!r} was imported as a private key; it has no mnemonic")
        print(mnemonic)
    else:
        print(store.load(info.name, passphrase).secret.hex())
    return 0


def _delete(args: argparse.Namespace) -> int:
    store = Keystore(home(args))
    if not store.exists(args.name):
        raise KeyNotFound(args.name, store.dir)
    if not args.yes and not prompt.confirm(f"Delete key {args.name!r} from {store.dir}?"):
        raise CliError(f"key {args.name!r} was not deleted")
    store.delete(args.name)
    print(f"deleted key {args.name!r}", file=sys.stderr)
    return 0


# -- helpers


def _store_for_new_key(args: argparse.Namespace) -> Keystore:
    """The key store, once the name is known to be valid and free (before any prompt)."""
    store = Keystore(home(args))
    check_key_name(args.name)
    if not args.overwrite and store.exists(args.name):
        raise CliError(f"{KeyExists(args.name)}; pass --overwrite to replace it")
    return store


def _new_passphrase(args: argparse.Namespace, store: Keystore) -> str | None:
    if args.keyring_backend == "test":
        return None
    passphrase = prompt.new_passphrase()
    if store.kdf.memlimit < KDF_PRESETS["interactive"].memlimit:
        print(f"warning: {KDF_ENV} makes this key file cheap to brute-force", file=sys.stderr)
    return passphrase


def _backend(info: KeyInfo) -> str:
    return "file" if info.encrypted else "test"


def _public(info: KeyInfo) -> dict[str, object]:
    return {**msgspec.structs.asdict(info), "backend": _backend(info)}


def _print_key(info: KeyInfo, output: str, mnemonic: str | None = None) -> None:
    if output == "json":
        fields = _public(info)
        if mnemonic is not None:
            fields["mnemonic"] = mnemonic
        print_json(fields)
        return
    print(f"name: {info.name}\naddress: {info.address}\npubkey: {info.pubkey}")
    print(f"backend: {_backend(info)}")
    if info.hd_path:
        print(f"hd_path: {info.hd_path}")
    if mnemonic is not None:
        sys.stdout.flush()
        print(f"\n{MNEMONIC_WARNING}\n", file=sys.stderr, flush=True)
        print(mnemonic)
