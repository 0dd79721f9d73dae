"""What every command group of the `gonka` CLI shares: the error type and the common options.

`--home DIR` is accepted both before the command (`gonka --home D keys list`) and after it
(`gonka keys list --home D`); the later one wins. Default: $GONKA_HOME, else ~/.gonka.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import msgspec

HOME_ENV = "GONKA_HOME"


class CliError(Exception):
    """An expected failure of a command; main() prints it as one `error: ...` line, exit 1."""


def add_home_option(parser: argparse.ArgumentParser, top_level: bool = False) -> None:
    parser.add_argument(
        "--home",
        metavar="DIR",
        # A subcommand's default must not overwrite a --home given before the command.
        default=None if top_level else argparse.SUPPRESS,
        help=f"the node's home folder (default: ${HOME_ENV} or ~/.gonka)",
    )


def home(args: argparse.Namespace) -> Path:
    chosen = getattr(args, "home", None) or os.environ.get(HOME_ENV) or "~/.gonka"
    return Path(chosen).expanduser()


def add_output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="output format"
    )


def print_json(value: object) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value)).decode() + "\n")


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
