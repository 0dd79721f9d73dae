"""Settings of one ML node process (`gonka mlnode start`); defaults follow the reference node."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

DEFAULT_MLNODE_PORT = 8080
DEFAULT_VLLM_PORT = 5001

Seconds = Annotated[float, Meta(gt=0.0)]


class MlNodeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = DEFAULT_MLNODE_PORT
    # When set, every request needs `Authorization: Bearer <auth_token>`.
    auth_token: str | None = None
    # Request bodies above this get 413 (a ProofBatch of 1M nonces is about 30 MB of JSON).
    max_body_bytes: Annotated[int, Meta(ge=1024)] = 64 << 20
    graceful_timeout_s: Seconds = 3.0

    # PoC: how often valid nonces and verdicts are POSTed to the callback URL, and how long one
    # POST may take before it counts as failed (and is retried on the next round).
    send_interval_s: Seconds = 5.0
    callback_timeout_s: Seconds = 30.0
    # At most this many nonces in one POST to {url}/generated; more go in the next POSTs.
    max_nonces_per_post: Annotated[int, Meta(ge=1, le=1_000_000)] = 100_000
    # Nonces per forward pass: None chooses from free memory, capped at max_batch_size (a batch
    # is also how long a stop can take, so the cap keeps it short on CPU).
    batch_size: Annotated[int, Meta(ge=1)] | None = None
    max_batch_size: Annotated[int, Meta(ge=1)] = 256

    # Inference backend (vLLM subprocess) and its watchdog: a backend that exits, or fails
    # `unhealthy_strikes` health checks in a row, is a failure and the node returns to STOPPED.
    watchdog_interval_s: Seconds = 2.0
    unhealthy_strikes: Annotated[int, Meta(ge=1)] = 3
    vllm_python: str | None = None
    vllm_host: str = "127.0.0.1"
    vllm_port: Annotated[int, Meta(ge=1, le=65535)] = DEFAULT_VLLM_PORT
    vllm_start_timeout_s: Seconds = 1200.0
    log_dir: str | None = None
