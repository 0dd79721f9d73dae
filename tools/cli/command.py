"""What every command group of the `gonka` CLI shares: the error type, the common options and the
way a long-running service runs until Ctrl-C.

`--home DIR` is accepted both before the command (`gonka --home D keys list`) and after it
(`gonka keys list --home D`); the later one wins. Default: $GONKA_HOME, else ~/.gonka.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

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


def _say_stopping(signum: int) -> None:
    print(f"stopping on {signal.Signals(signum).name}", file=sys.stderr)


def run_until_signal(start: Callable[[Any], Awaitable[None]],
                     on_signal: Callable[[int], None] = _say_stopping) -> None:
    """Run a service until SIGINT or SIGTERM: `start(nursery)` starts its tasks in the nursery
    (and says where it serves); the first signal calls `on_signal` and cancels them all.
    Errors from the service propagate out of trio.run as they are."""
    import trio  # not needed by the short commands

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                await start(nursery)
                async for signum in signals:
                    on_signal(signum)
                    nursery.cancel_scope.cancel()
                    break

    trio.run(main)


def first_exception(group: BaseExceptionGroup, types) -> BaseException | None:
    """The first exception of `types` inside a (nested) exception group, or None."""
    for e in group.exceptions:
        if isinstance(e, types):
            return e
        if isinstance(e, BaseExceptionGroup) and (inner := first_exception(e, types)) is not None:
            return inner
    return None
