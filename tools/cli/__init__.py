"""The `gonka` command line: one argparse program whose command groups register themselves.

Each group lives in its own module with a `register(subparsers)` function that adds its parser
and sets `run=` on every leaf command; `run(args) -> int` does the work. Adding a group is one
line in `COMMAND_GROUPS`. Only groups that are built are listed: no stubs.

Expected failures (a wrong passphrase, a malformed mnemonic, a missing key, an unreadable file)
are one line `error: ...` on stderr and exit status 1; usage errors are argparse's (status 2).
A traceback means a bug. This module must never print a secret in an error.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence

from chain.crypto.errors import CryptoError
from tools.cli.command import CliError, add_home_option

# Modules with a `register(subparsers)`; each adds one top-level command.
COMMAND_GROUPS = (
    "tools.cli.keys",
    "tools.cli.chain",
    "tools.cli.genesis",
    "tools.cli.tx",
    "tools.cli.bench",
    "tools.cli.devnet",
    "tools.cli.mlnode",
    "tools.cli.api",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gonka",
        description="Gonka: a decentralized network for AI inference and training.",
    )
    parser.add_argument("--version", action="version", version=f"gonka {_version()}")
    add_home_option(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_GROUPS:
        importlib.import_module(module).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `gonka argv...`; returns the exit status (0 ok, 1 error, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and usage errors
        return e.code if isinstance(e.code, int) else 1
    try:
        return args.run(args)
    except (CliError, CryptoError) as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(f"{e.strerror or e}: {e.filename}" if e.filename else str(e))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return _fail("interrupted")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _version() -> str:
    try:
        return importlib.metadata.version("gonka")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
