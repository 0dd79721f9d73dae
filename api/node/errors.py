"""The API node's refusals, as types carrying their data, and their one HTTP form: OpenAI's
error shape `{"error": {"message", "type", "param", "code"}}` with the status the type names,
so that the openai client raises its matching exception (401 AuthenticationError, 402/429
RateLimitError-like, 404 NotFoundError, ...) with the human message.

Errors raised elsewhere (api.signing, api.routing, api.mlnodes, api.bandwidth) are mapped here;
nothing else in the node builds an error body. Pure: no I/O.
"""

from __future__ import annotations

import math
from typing import ClassVar

import msgspec

from api.bandwidth import CapacityReached
from api.mlnodes import NoMlNode
from api.routing import NoExecutor
from api.signing import SigningError

# OpenAI's `type` per status.
_TYPES = {400: "invalid_request_error", 401: "authentication_error",
          402: "insufficient_quota", 403: "permission_error", 404: "not_found_error",
          413: "invalid_request_error", 429: "rate_limit_error", 500: "server_error",
          502: "server_error", 503: "service_unavailable", 504: "server_error"}


class ErrorDetail(msgspec.Struct, frozen=True):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorDetail


class ApiError(Exception):
    """A request refused with `status`; `code` a stable short name, the message for people."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    param: str | None = None

    def headers(self) -> dict[str, str]:
        return {}


class BodyTooLarge(ApiError):
    status, code = 413, "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than this node accepts ({limit} bytes)")
        self.limit = limit


class UnknownModel(ApiError):
    status, code = 404, "model_not_found"
    param = "model"

    def __init__(self, model: str, served: list[str]) -> None:
        known = ", ".join(served) if served else "none"
        super().__init__(f"the model {model!r} is not served in the current epoch "
                         f"(served: {known}; see GET /v1/models)")
        self.model, self.served = model, served


class TooManyTokens(ApiError):
    status, code = 400, "max_tokens_too_large"
    param = "max_tokens"

    def __init__(self, asked: int, limit: int) -> None:
        super().__init__(f"max_tokens {asked} is more than the chain accepts ({limit})")
        self.asked, self.limit = asked, limit


class Replay(ApiError):
    status, code = 400, "request_replayed"

    def __init__(self, inference_id: bytes, role: str) -> None:
        super().__init__(f"this signed request (inference id {inference_id.hex()[:16]}...) was "
                         f"already received by this {role}: sign each request anew")
        self.inference_id, self.role = inference_id, role


class InsufficientBalance(ApiError):
    status, code = 402, "insufficient_balance"

    def __init__(self, address: str, balance: int, escrow: int) -> None:
        super().__init__(f"{address} has {balance} ngonka; this request needs an escrow of "
                         f"{escrow} ngonka ((prompt tokens + max_tokens) x price): lower "
                         "max_tokens or fund the account")
        self.address, self.balance, self.escrow = address, balance, escrow


class RateLimited(ApiError):
    status, code = 429, "capacity_reached"

    def __init__(self, reason: str, retry_after_s: int, public_url: str) -> None:
        super().__init__(f"{reason}; retry in about {retry_after_s} s or send to another "
                         f"transfer agent ({public_url}/v1/participants)")
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class Unavailable(ApiError):
    status, code = 503, "unavailable"


class ChainUnavailable(Unavailable):
    code = "chain_unavailable"

    def __init__(self, reason: str) -> None:
        super().__init__(f"this node cannot read the chain right now ({reason}); try again")
        self.reason = reason


class ExecutorFailed(ApiError):
    status, code = 502, "executor_failed"

    def __init__(self, executor: str, reason: str) -> None:
        super().__init__(f"the executor {executor} failed: {reason}")
        self.executor, self.reason = executor, reason


class MlNodeFailed(ApiError):
    status, code = 502, "ml_node_failed"

    def __init__(self, node_id: str, reason: str) -> None:
        super().__init__(f"ML node {node_id} failed: {reason}")
        self.node_id, self.reason = node_id, reason


class NotFound(ApiError):
    status, code = 404, "not_found"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class NotAValidator(ApiError):
    status, code = 403, "not_a_validator"

    def __init__(self, validator: str, epoch: int) -> None:
        super().__init__(f"{validator} holds no weight in the group of epoch {epoch}, the "
                         "epoch of this inference: only its validators may fetch the payload")
        self.validator, self.epoch = validator, epoch


class StalePayloadRequest(ApiError):
    """A payload request signed at a time outside the chain's window: refused as not
    authenticated (a signature is only good within the window)."""

    status = 401

    def __init__(self, e: SigningError) -> None:
        super().__init__(str(e))
        self.code = e.code  # type: ignore[misc]


def retry_after_seconds(blocks: int, block_time_s: float) -> int:
    return max(1, math.ceil(blocks * block_time_s))


def as_api_error(e: Exception, *, public_url: str = "", block_time_s: float = 1.0
                 ) -> ApiError | None:
    """The ApiError for an error of the other api modules; None if it is not one of theirs."""
    if isinstance(e, ApiError):
        return e
    if isinstance(e, SigningError):
        return _Signing(e)
    if isinstance(e, NoExecutor):
        err = Unavailable(str(e))
        return err
    if isinstance(e, NoMlNode):
        return Unavailable(str(e))
    if isinstance(e, CapacityReached):
        return RateLimited(str(e), retry_after_seconds(e.retry_after_blocks, block_time_s),
                           public_url)
    return None


class _Signing(ApiError):
    """A SigningError with its own status and code."""

    def __init__(self, e: SigningError) -> None:
        super().__init__(str(e))
        self.status = e.status  # type: ignore[misc]
        self.code = e.code  # type: ignore[misc]
        self.param = "messages" if e.code == "invalid_request_body" else None


def error_body(status: int, message: str, code: str | None, param: str | None = None) -> bytes:
    return msgspec.json.encode(ErrorBody(ErrorDetail(
        message=message, type=_TYPES.get(status, "api_error"), param=param, code=code)))


def body_of(e: ApiError) -> bytes:
    return error_body(e.status, str(e), e.code, e.param)


def parse_error_message(body: bytes) -> str | None:
    """The message of an OpenAI-shaped error body (ours, an executor's, an ML node's), or of
    the ML node's own `{"error": "text"}`; None if the body is neither."""
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if not isinstance(value, dict):
        return None
    error = value.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return None
