"""`gonka api`: run the API node (the host's OpenAI-compatible endpoint, transfer agent and
executor, with its chain client).

    gonka api start [--home DIR] [--config FILE] [--chain-rpc URL] [--public-url URL]
                    [--public-port N] [--callbacks-port N] [--admin-port N]
                    [--account ADDR] [--signer-key NAME | --signer-key-file FILE]
                    [--validator-key HEX] [--log-level LEVEL]

The node drives the host's ML nodes (the broker: `ml_nodes` of the config, then the admin API's
list kept under the state folder), runs its PoC (seeds, commits, validation of the other hosts)
and, given the chain node's consensus key (`validator_key`, `gonka chain show-validator`),
registers the account as a participant at start if it is not one yet.

The settings come from FILE (default HOME/api/config.toml; TOML, or JSON for a .json name, see
api/node/config.py), each flag given overriding its setting. The node serves until SIGINT or
SIGTERM, then stops cleanly (open requests are cut, queued messages stay in the outbox).
"""

from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path

from tools.cli.command import CliError, add_home_option, first_exception, home, run_until_signal


def register(commands: argparse._SubParsersAction) -> None:
    api = commands.add_parser("api", help="run the API node",
                              description="Run the API node: the OpenAI-compatible public API, "
                              "ML-node callbacks and admin servers, and the chain client.")
    sub = api.add_subparsers(dest="api_command", required=True, metavar="COMMAND")
    start = sub.add_parser("start", help="serve the API node until interrupted",
                           description="Serve the API node until Ctrl-C (or SIGTERM).")
    add_home_option(start)
    start.add_argument("--config", metavar="FILE",
                       help="settings file (default: HOME/api/config.toml)")
    start.add_argument("--chain-rpc", metavar="URL", help="the chain node's RPC URL")
    start.add_argument("--public-url", metavar="URL",
                       help="the URL other hosts reach this node at")
    start.add_argument("--public-host", metavar="HOST")
    start.add_argument("--public-port", type=int, metavar="N")
    start.add_argument("--callbacks-port", type=int, metavar="N")
    start.add_argument("--admin-port", type=int, metavar="N")
    start.add_argument("--account", metavar="ADDR", help="the host's account address")
    start.add_argument("--signer-key", metavar="NAME", help="a key of HOME's keyring")
    start.add_argument("--signer-key-file", metavar="FILE",
                       help="a file holding the signer's private key (hex)")
    start.add_argument("--validator-key", metavar="HEX",
                       help="the host chain node's consensus key, to register with at start")
    start.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    start.set_defaults(run=_start)


def _start(args: argparse.Namespace) -> int:
    import msgspec

    from api.node.config import API_DIR, CONFIG_FILE, ConfigError, load_config, resolve
    from api.node.host import AccountKeyUnknown
    from api.node.server import serve_api

    root = home(args)
    path = Path(args.config) if args.config else root / API_DIR / CONFIG_FILE
    overrides = {
        "chain_rpc": args.chain_rpc, "public_url": args.public_url,
        "public.host": args.public_host, "public.port": args.public_port,
        "callbacks.port": args.callbacks_port, "admin.port": args.admin_port,
        "account": args.account, "log_level": args.log_level,
        "validator_key": args.validator_key,
        "signer_key": args.signer_key, "signer_key_file": args.signer_key_file,
    }
    try:
        config = load_config(path, overrides)
        # A signer named on the command line replaces the file's, whichever kind it is.
        if args.signer_key_file is not None:
            config = msgspec.structs.replace(config, signer_key=None)
        elif args.signer_key is not None:
            config = msgspec.structs.replace(config, signer_key_file=None)
        resolved = resolve(config, root)
    except ConfigError as e:
        raise CliError(str(e)) from None
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def start(nursery) -> None:
        server = await nursery.start(functools.partial(serve_api, resolved))
        print(f"API node {resolved.account} running: public {server.public_url} "
              f"(as {resolved.public_url}), callbacks {server.callbacks_url}, "
              f"admin {server.admin_url}", flush=True)

    try:
        run_until_signal(start)
    except BaseExceptionGroup as group:
        unknown = first_exception(group, AccountKeyUnknown)
        if unknown is not None:
            raise CliError(f"cannot run PoC: {unknown}") from None
        error = first_exception(group, OSError)
        if error is None:
            raise
        raise CliError(f"cannot serve: {error.strerror or error}") from None
    except AccountKeyUnknown as error:
        raise CliError(f"cannot run PoC: {error}") from None
    except OSError as error:
        raise CliError(f"cannot serve: {error.strerror or error}") from None
    return 0
