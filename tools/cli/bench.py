"""`gonka bench`: the benchmarks of `tools/bench/`, each printing ratios against a baseline run in
the same process. They are measurements, not tests: they print and never fail on a figure.

    gonka bench native [--signatures N] [--leaves N] [--repeat N]
    gonka bench chain [--txs N] [--accounts N] [--clients N]
    gonka bench poc [--params small] [--nonces N] [--batch N] [--mismatch-nonces N]
    gonka bench api [--requests N] [--concurrency N] [--seconds S] [--free] [--in-process]
"""

from __future__ import annotations

import argparse

from tools.cli.command import CliError, positive_int


def positive_float(text: str) -> float:
    """argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value}")
    return value


def register(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        "bench", help="run a benchmark", description="Run a benchmark of tools/bench/."
    )
    sub = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    native = sub.add_parser(
        "native",
        help="batch signature checks and Merkle roots: extension vs pure-Python fallback",
        description="Batch signature checks (secp256k1, ed25519) and BLAKE3 Merkle roots: the "
        "compiled extension against the pure-Python fallback, on the same inputs.",
    )
    native.add_argument("--signatures", type=positive_int, default=20_000, metavar="N")
    native.add_argument("--leaves", type=positive_int, default=1_000_000, metavar="N")
    native.add_argument("--repeat", type=positive_int, default=3, metavar="N",
                        help="runs of each side; the best is reported")
    native.set_defaults(run=_native)

    chain = sub.add_parser(
        "chain",
        help="committed transfers per second and broadcast-to-commit latency, 1 and 4 validators",
        description="Committed bank transfers per second and the broadcast-to-commit latency of "
        "a 1-validator and a 4-validator network of local node processes.")
    chain.add_argument("--txs", type=positive_int, default=5000, metavar="N")
    chain.add_argument("--accounts", type=positive_int, default=100, metavar="N",
                       help="sending accounts (spreads the per-sender mempool quota)")
    chain.add_argument("--clients", type=positive_int, default=8, metavar="N",
                       help="concurrent RPC clients sending the txs")
    chain.set_defaults(run=_chain)

    poc = sub.add_parser(
        "poc",
        help="PoC nonces per second: our bf16 path vs a plain fp32 reference approach",
        description="Nonces checked per second by our PoC path and by a straightforward "
        "reference approach (PCG64 inputs per nonce, fp32 forward), the forward's FLOP rate "
        "against the bf16 dense-matmul rate, and the cross-implementation mismatch rate.")
    poc.add_argument("--params", choices=("test", "small"), default="small",
                     help="parameter set (chain/types/poc.py)")
    poc.add_argument("--nonces", type=positive_int, default=512, metavar="N")
    poc.add_argument("--baseline-nonces", type=positive_int, default=128, metavar="N")
    poc.add_argument("--batch", type=positive_int, default=64, metavar="N")
    poc.add_argument("--mismatch-nonces", type=positive_int, default=512, metavar="N")
    poc.add_argument("--triton-nonces", type=int, default=32, metavar="N",
                     help="nonces compared with the Triton path (interpreter without a GPU; "
                     "0 skips it)")
    poc.add_argument("--threads", type=positive_int, default=None, metavar="N",
                     help="torch threads (default: torch's choice, one per core)")
    poc.set_defaults(run=_poc)

    api = sub.add_parser(
        "api",
        help="API node requests/s and the latency its two hops add over the ML node alone",
        description="A two-host network (chain validators, API nodes, mock ML nodes that "
        "answer instantly, each its own process unless --in-process) taken to epoch 1: the "
        "latency of sequential requests straight "
        "to the ML node against through host A's API, then the completed requests per second "
        "of concurrent clients through hosts A and B, with every inference recorded on chain.")
    api.add_argument("--requests", type=positive_int, default=100, metavar="N",
                     help="sequential requests of each side at low load")
    api.add_argument("--concurrency", type=positive_int, default=8, metavar="N",
                     help="concurrent clients of the throughput run")
    api.add_argument("--seconds", type=positive_float, default=10.0, metavar="S",
                     help="how long the concurrent clients send")
    api.add_argument("--free", action="store_true",
                     help="free inference (price 0) instead of the priced grace period")
    api.add_argument("--in-process", action="store_true",
                     help="run every node in the benchmark's own process (one core, one "
                     "event loop) instead of one process per node as hosts run them")
    api.set_defaults(run=_api)


def _native(args: argparse.Namespace) -> int:
    try:
        from tools.bench import native
    except ImportError as e:
        raise CliError(f"the native extension is not built ({e}); run scripts/bootstrap.sh") from e
    native.run(signatures=args.signatures, leaves=args.leaves, repeat=args.repeat)
    return 0


def _chain(args: argparse.Namespace) -> int:
    from tools.bench import chain

    chain.run(txs=args.txs, accounts=args.accounts, clients=args.clients)
    return 0


def _poc(args: argparse.Namespace) -> int:
    from chain.types.poc import PARAM_SETS
    from tools.bench import poc

    poc.run(PARAM_SETS[args.params], nonces=args.nonces, baseline_nonces=args.baseline_nonces,
            batch=args.batch, mismatch_nonces=args.mismatch_nonces,
            triton_nonces=args.triton_nonces, threads=args.threads)
    return 0


def _api(args: argparse.Namespace) -> int:
    from tools.bench import api

    api.run(requests=args.requests, concurrency=args.concurrency, seconds=args.seconds,
            free=args.free, processes=not args.in_process)
    return 0
