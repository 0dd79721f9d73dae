"""`python -m testermint_py.mock_mlnode --port N [--script FILE]`: a mock ML node as a process.

Prints "mock ML node listening on URL" once it listens (port 0 picks a free one), serves until
interrupted.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from pathlib import Path

import msgspec
import trio

from testermint_py.mock_mlnode.script import MockScript
from testermint_py.mock_mlnode.server import DEFAULT_CONFIG, serve_mock_mlnode


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m testermint_py.mock_mlnode",
                                description="Serve a mock ML node (scripted, no model).")
    p.add_argument("--host", default=DEFAULT_CONFIG.host)
    p.add_argument("--port", type=int, default=DEFAULT_CONFIG.port)
    p.add_argument("--script", type=Path, help="a MockScript as JSON")
    p.add_argument("--auth-token", help="require 'Authorization: Bearer TOKEN'")
    p.add_argument("--send-interval", type=float, default=DEFAULT_CONFIG.send_interval_s,
                   help="seconds between PoC callback POSTs")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        script = (msgspec.json.decode(args.script.read_bytes(), type=MockScript)
                  if args.script else MockScript())
        config = msgspec.structs.replace(DEFAULT_CONFIG, host=args.host, port=args.port,
                                         auth_token=args.auth_token,
                                         send_interval_s=args.send_interval)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(functools.partial(serve_mock_mlnode, config,
                                                        script=script))
            print(f"mock ML node listening on {url}", flush=True)

    try:
        trio.run(run)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
