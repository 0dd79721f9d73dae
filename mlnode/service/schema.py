"""Request and response bodies of the ML node's control API (besides `chain.types.poc`).

PoC bodies (`PowInitRequest`, `ProofBatch`, `ValidatedBatch`) are shared wire types in
`chain.types.poc`; the ones here are the ML node's own. Types only: no behaviour.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta


class InferenceUpRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """POST /api/v1/inference/up: the model to serve and extra vLLM arguments."""

    model: Annotated[str, Meta(min_length=1, max_length=1024)]
    dtype: Annotated[str, Meta(min_length=1, max_length=32)] = "auto"
    additional_args: Annotated[list[str], Meta(max_length=256)] = []
    served_model_name: Annotated[str, Meta(min_length=1, max_length=1024)] | None = None


class PowStatus(msgspec.Struct, frozen=True):
    """GET /api/v1/pow/status.

    status: NOT_LOADED (no PoC session), LOADING (building the model), IDLE, GENERATING or
    VALIDATING. Counters are the current session's: nonces computed while generating (checked),
    of them valid, valid nonces delivered to {url}/generated (sent), refused by it as a bad body
    (rejected) and still to deliver (pending), batches validated, and verdicts still to deliver
    to {url}/validated.
    """

    status: str
    is_model_initialized: bool
    checked: int = 0
    valid: int = 0
    sent: int = 0
    rejected: int = 0
    pending: int = 0
    validated: int = 0
    pending_validated: int = 0
    batch_size: int | None = None
    block_hash: str | None = None
    block_height: int | None = None
    last_send_error: str | None = None


class OkView(msgspec.Struct, frozen=True):
    status: str = "OK"


class PowView(msgspec.Struct, frozen=True):
    """Answer to the PoC commands: {"status": "OK", "pow_status": PowStatus}."""

    pow_status: PowStatus
    status: str = "OK"


class StateView(msgspec.Struct, frozen=True, omit_defaults=True):
    """GET /api/v1/state: STOPPED, POW or INFERENCE, and the last failure if one is recorded."""

    state: str
    failure: str | None = None


class HealthView(msgspec.Struct, frozen=True):
    """GET /api/v1/health: always 200 while the process serves; `status` FAILED after a failure."""

    status: str
    state: str
    failure: str | None
    pow: PowStatus
    inference_running: bool


class ErrorView(msgspec.Struct, frozen=True, omit_defaults=True):
    """Every error: a message, and the node's state when the error is about the state (409)."""

    error: str
    state: str | None = None
