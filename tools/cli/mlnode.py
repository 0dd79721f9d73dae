"""`gonka mlnode`: run an ML node and make the tiny local model its tests serve.

    gonka mlnode start [--host H] [--port P] [--log-dir DIR] [--vllm-python PY] [--vllm-port P]
                       [--batch-size N] [--send-interval S]
    gonka mlnode make-tiny-model DIR [--hidden N] [--layers N] [--heads N] [--vocab N] [--seed N]

`start` serves the control API (/api/v1/...) and the inference proxy until Ctrl-C. Set
$GONKA_MLNODE_TOKEN to require `Authorization: Bearer <token>` on every request (needed when
--host is not a loopback address).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os

from tools.cli.command import (
    CliError,
    add_home_option,
    first_exception,
    home,
    positive_int,
    run_until_signal,
)

TOKEN_ENV = "GONKA_MLNODE_TOKEN"


def register(commands: argparse._SubParsersAction) -> None:
    mlnode = commands.add_parser("mlnode", help="run an ML node (PoC and inference)",
                                 description="Run an ML node: PoC generation and validation, "
                                 "inference through vLLM.")
    sub = mlnode.add_subparsers(dest="mlnode_command", required=True, metavar="COMMAND")

    start = sub.add_parser("start", help="serve the ML node until interrupted",
                           description="Serve the ML node's control API and inference proxy "
                           f"until Ctrl-C. ${TOKEN_ENV}, when set, is the bearer token every "
                           "request must carry.")
    add_home_option(start)
    start.add_argument("--host", default="127.0.0.1", help="address to listen on")
    start.add_argument("--port", type=_port, default=8080, help="port to listen on")
    start.add_argument("--log-dir", metavar="DIR",
                       help="where vLLM logs go (default: HOME/mlnode/logs)")
    start.add_argument("--vllm-python", metavar="PY",
                       help="the Python that has vLLM (default: $GONKA_VLLM_PYTHON, else "
                       ".venv-vllm/bin/python of the repository)")
    start.add_argument("--vllm-port", type=_port, default=5001, help="port of the vLLM server")
    start.add_argument("--batch-size", type=positive_int, metavar="N",
                       help="PoC nonces per forward pass (default: chosen from free memory)")
    start.add_argument("--poc-backend", default="auto",
                       choices=("auto", "reference", "cpu", "triton"),
                       help="PoC implementation (mlnode/pow/compute.py); auto = triton with a "
                       "GPU, else the compiled CPU path")
    start.add_argument("--send-interval", type=float, default=5.0, metavar="S",
                       help="seconds between POSTs of found nonces to the API node")
    start.add_argument("--log-level", default="info",
                       choices=("debug", "info", "warning", "error"))
    start.set_defaults(run=_start)

    tiny = sub.add_parser("make-tiny-model", help="write a tiny random Llama and its tokenizer",
                          description="Write a tiny random LlamaForCausalLM checkpoint and a "
                          "byte-level BPE tokenizer into DIR, for vLLM tests (no download).")
    tiny.add_argument("directory", metavar="DIR")
    tiny.add_argument("--hidden", type=positive_int, default=128)
    tiny.add_argument("--layers", type=positive_int, default=2)
    tiny.add_argument("--heads", type=positive_int, default=2)
    tiny.add_argument("--vocab", type=positive_int, default=512)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(run=_make_tiny_model)


def _start(args: argparse.Namespace) -> int:
    import msgspec

    from mlnode.pow.compute import build_poc_function
    from mlnode.service import MlNodeConfig, serve_mlnode

    log_dir = args.log_dir or str(home(args) / "mlnode" / "logs")
    try:
        config = msgspec.convert(dict(
            host=args.host, port=args.port, log_dir=log_dir, vllm_python=args.vllm_python,
            vllm_port=args.vllm_port, batch_size=args.batch_size,
            send_interval_s=args.send_interval, auth_token=os.environ.get(TOKEN_ENV) or None,
        ), MlNodeConfig)
    except msgspec.ValidationError as e:
        raise CliError(f"bad setting: {e}") from None
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def factory(params, block_hash):
        return build_poc_function(params, block_hash, args.poc_backend)

    async def start(nursery) -> None:
        url = await nursery.start(functools.partial(serve_mlnode, config, model_factory=factory))
        print(f"ML node running: {url}/api/v1 (inference proxy at {url}/v1)", flush=True)

    try:
        run_until_signal(start)
    except BaseExceptionGroup as group:
        # A port in use or a bad address surfaces from inside the nurseries.
        error = first_exception(group, OSError)
        if error is None:
            raise
        raise CliError(f"cannot serve on {args.host}:{args.port}: {error.strerror or error}") \
            from None
    except OSError as error:
        raise CliError(f"cannot serve on {args.host}:{args.port}: {error.strerror or error}") \
            from None
    return 0


def _make_tiny_model(args: argparse.Namespace) -> int:
    try:
        from mlnode.inference.tiny_model import make_tiny_model
    except ImportError as e:
        raise CliError(f"the tiny model needs {e.name or 'a missing module'}: {e}") from None
    try:
        out = make_tiny_model(args.directory, hidden=args.hidden, n_heads=args.heads,
                              n_layers=args.layers, vocab_size=args.vocab, seed=args.seed)
    except ValueError as e:
        raise CliError(str(e)) from None
    print(out)
    return 0


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {value}")
    return value
