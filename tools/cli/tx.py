"""`gonka tx` and `gonka query`: talk to a running node through its RPC.

    gonka tx send FROM TO AMOUNT [--node URL] [--mode sync|commit|async] [--timeout-blocks N]
    gonka query balance ADDRESS|KEYNAME [--node URL]
    gonka query block HEIGHT [--node URL]
    gonka query tx HASH [--node URL]
    gonka query supply [--node URL]
    gonka query status [--node URL]

FROM is a key name of this home's key store (its passphrase is asked as `gonka keys export` does);
TO an address or key name. The chain id and the current height come from the node, so a tx is
signed for the chain the node runs and expires `--timeout-blocks` after the current height.
Results print as JSON; a tx the chain refuses is an error (exit 1) with the chain's code and log.
"""

from __future__ import annotations

import argparse

import trio

from chain.crypto.keystore import Keystore
from chain.node.home import NodeHome
from chain.rpc.client import RpcClient, RpcError
from chain.rpc.schema import BroadcastView
from chain.types.codec import encode
from chain.types.msgs import MsgSend
from chain.types.tx import TxBody, sign_tx
from tools.cli import prompt
from tools.cli.command import CliError, add_home_option, home, print_json
from tools.cli.genesis import parse_amount, resolve_account

DEFAULT_NODE = "http://127.0.0.1:26657"


def _add_node_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", default=DEFAULT_NODE, metavar="URL",
                        help=f"the node's RPC (default {DEFAULT_NODE})")


def register(commands: argparse._SubParsersAction) -> None:
    tx = commands.add_parser("tx", help="sign and send a transaction",
                             description="Sign a transaction and send it to a node.")
    sub = tx.add_subparsers(dest="tx_command", required=True, metavar="COMMAND")
    send = sub.add_parser("send", help="transfer ngonka to another account")
    add_home_option(send)
    _add_node_option(send)
    send.add_argument("sender", metavar="FROM", help="key name in this home's key store")
    send.add_argument("recipient", metavar="TO", help="an address or a key name")
    send.add_argument("amount", type=parse_amount, help="ngonka, or e.g. 5gonka")
    send.add_argument("--memo", default="")
    send.add_argument("--mode", choices=("sync", "commit", "async"), default="commit",
                      help="return after check_tx (sync), after inclusion (commit, default), "
                      "or at once (async)")
    send.add_argument("--timeout-blocks", type=int, default=100,
                      help="the tx expires this many blocks after the current height")
    send.set_defaults(run=_send)

    query = commands.add_parser("query", help="read chain state from a node",
                                description="Read chain state from a node's RPC.")
    qsub = query.add_subparsers(dest="query_command", required=True, metavar="WHAT")
    for name, what, extra in (("balance", "an account's balance", "account"),
                              ("block", "a committed block", "height"),
                              ("tx", "a committed tx by hash", "hash"),
                              ("supply", "the total supply", None),
                              ("status", "the node's status", None)):
        p = qsub.add_parser(name, help=what)
        add_home_option(p)
        _add_node_option(p)
        if extra == "height":
            p.add_argument("height", type=int)
        elif extra:
            p.add_argument(extra)
        p.set_defaults(run=_query, what=name)
    path = qsub.add_parser(
        "path", help="any state query by its path (chain/app/PROTOCOL.md lists them)",
        description="Any state query, e.g. `gonka query path epochs/current` or "
        "`gonka query path epochs/group epoch=1`; parameters are NAME=VALUE.")
    add_home_option(path)
    _add_node_option(path)
    path.add_argument("path", help="e.g. epochs/current, participants/all, rewards/settlement")
    path.add_argument("params", nargs="*", metavar="NAME=VALUE")
    path.set_defaults(run=_query, what="path")


def _run(coro_fn, *args):
    try:
        return trio.run(coro_fn, *args)
    except RpcError as e:
        raise CliError(f"the node answered {e}") from None
    except OSError as e:
        raise CliError(f"cannot reach the node: {e}") from None
    except Exception as e:  # httpx's transport errors
        if type(e).__module__.startswith("httpx"):
            raise CliError(f"cannot reach the node: {e}") from None
        raise


def _send(args: argparse.Namespace) -> int:
    node_home = NodeHome(home(args))
    store = Keystore(node_home.root)
    info = store.show(args.sender)
    passphrase = prompt.passphrase_for(args.sender) if info.encrypted else None
    key = store.load(args.sender, passphrase)
    recipient = resolve_account(node_home, args.recipient)
    if args.timeout_blocks < 1:
        raise CliError("--timeout-blocks must be at least 1")

    async def send() -> BroadcastView:
        async with RpcClient(args.node) as client:
            status = await client.status()
            body = TxBody(chain_id=status.chain_id,
                          messages=(MsgSend(from_address=key.address, to_address=recipient,
                                            amount=args.amount),),
                          memo=args.memo, timeout_height=status.latest_height + args.timeout_blocks)
            return await client.broadcast(encode(sign_tx(body, key)), args.mode)

    result = _run(send)
    print_json(result)
    if result.code != 0:
        raise CliError(f"the chain refused the tx (code {result.code}): {result.log}")
    if result.result is not None and result.result.code != 0:
        raise CliError(f"the tx failed in block {result.height} (code {result.result.code}): "
                       f"{result.result.log}")
    return 0


def _query_params(items: list[str]) -> dict[str, str]:
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"query parameters are NAME=VALUE, got {item!r}")
        params[name] = value
    return params


def _query(args: argparse.Namespace) -> int:
    async def query():
        async with RpcClient(args.node) as client:
            match args.what:
                case "balance":
                    address = resolve_account(NodeHome(home(args)), args.account)
                    return await client.query("bank/balance", address=address)
                case "supply":
                    return await client.query("bank/supply")
                case "status":
                    return await client.status()
                case "block":
                    return await client.block(args.height)
                case "tx":
                    return await client.tx(args.hash)
                case "path":
                    return await client.query(args.path, **_query_params(args.params))

    value = _run(query)
    if value is None:
        which = args.height if args.what == "block" else args.hash
        raise CliError(f"the node has no {args.what} {which}")
    print_json(value)
    return 0
