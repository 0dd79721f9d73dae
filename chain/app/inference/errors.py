"""Errors of the inference module (codes 800-899, codespace "inference"). Ids appear as the
first 16 hex digits of the 64-byte developer signature."""

from __future__ import annotations

from chain.app.errors import TxError


def short_id(inference_id: bytes) -> str:
    return inference_id.hex()[:16]


def _seconds(ns: int) -> str:
    """A duration in ns as seconds with up to 9 decimals (exact: no floats)."""
    whole, frac = divmod(abs(ns), 10**9)
    text = f"{whole}.{frac:09d}".rstrip("0").rstrip(".")
    return ("-" if ns < 0 else "") + text + " s"


class InferenceError(TxError):
    codespace = "inference"


class InvalidDeveloperSignature(InferenceError):
    code = 801

    def __init__(self, inference_id: bytes, requested_by: str) -> None:
        super().__init__(f"inference id {short_id(inference_id)} is not {requested_by}'s "
                         "signature over the request (prompt hash, timestamp, transfer agent)")
        self.inference_id, self.requested_by = inference_id, requested_by


class InvalidTransferSignature(InferenceError):
    code = 802

    def __init__(self, inference_id: bytes, transfer_agent: str) -> None:
        super().__init__(f"transfer_signature of inference {short_id(inference_id)} is not "
                         f"signed by transfer agent {transfer_agent} or one of its "
                         "inference/MsgStartInference grantees")
        self.inference_id, self.transfer_agent = inference_id, transfer_agent


class InvalidExecutorSignature(InferenceError):
    code = 803

    def __init__(self, inference_id: bytes, executor: str) -> None:
        super().__init__(f"executor_signature of inference {short_id(inference_id)} is not "
                         f"signed by executor {executor} or one of its "
                         "inference/MsgFinishInference grantees")
        self.inference_id, self.executor = inference_id, executor


class UnknownModel(InferenceError):
    code = 804

    def __init__(self, model: str, epoch: int) -> None:
        super().__init__(f"model {model!r} is not served in epoch {epoch} (not in its group's "
                         "model snapshot)")
        self.model, self.epoch = model, epoch


class ExecutorNotServing(InferenceError):
    code = 805

    def __init__(self, executor: str, model: str, epoch: int) -> None:
        super().__init__(f"executor {executor} is not a member with weight of epoch {epoch}'s "
                         f"sub-group for model {model!r}")
        self.executor, self.model, self.epoch = executor, model, epoch


class DuplicateInference(InferenceError):
    code = 806

    def __init__(self, inference_id: bytes, message: str, *, pruned: bool = False) -> None:
        # `pruned`: the id is in the seen index but its record is gone (completed and pruned
        # with its epoch): the message replays a request the chain already settled.
        super().__init__(
            f"inference {short_id(inference_id)} was already completed and its record pruned: "
            f"this {message} replays it" if pruned
            else f"inference {short_id(inference_id)} already has its {message}")
        self.inference_id, self.message, self.pruned = inference_id, message, pruned


class InferenceExpired(InferenceError):
    code = 807

    def __init__(self, inference_id: bytes, expired_at: int) -> None:
        super().__init__(f"inference {short_id(inference_id)} expired at height {expired_at}")
        self.inference_id, self.expired_at = inference_id, expired_at


class MismatchedInference(InferenceError):
    code = 808

    def __init__(self, inference_id: bytes, fields: tuple[str, ...]) -> None:
        super().__init__(f"inference {short_id(inference_id)}: this message's "
                         f"{', '.join(fields)} differ from the first message's")
        self.inference_id, self.fields = inference_id, fields


class DeveloperCannotPay(InferenceError):
    code = 809

    def __init__(self, inference_id: bytes, developer: str, balance: int, escrow: int) -> None:
        super().__init__(f"developer {developer} holds {balance} ngonka, the escrow of inference "
                         f"{short_id(inference_id)} is {escrow}")
        self.inference_id, self.developer = inference_id, developer
        self.balance, self.escrow = balance, escrow


class RequestTooOld(InferenceError):
    code = 810

    def __init__(self, inference_id: bytes, request_ns: int, block_ns: int,
                 earliest_ns: int) -> None:
        super().__init__(f"inference {short_id(inference_id)} was requested at {request_ns} ns, "
                         f"{_seconds(block_ns - request_ns)} before the block time {block_ns} ns; "
                         f"a first message is accepted for request times >= {earliest_ns} ns only "
                         "(block time - max_request_age_s, or older ids are forgotten)")
        self.inference_id, self.request_ns = inference_id, request_ns
        self.block_ns, self.earliest_ns = block_ns, earliest_ns


class RequestFromFuture(InferenceError):
    code = 811

    def __init__(self, inference_id: bytes, request_ns: int, block_ns: int,
                 latest_ns: int) -> None:
        super().__init__(f"inference {short_id(inference_id)} claims a request time "
                         f"{request_ns} ns, {_seconds(request_ns - block_ns)} after the block "
                         f"time {block_ns} ns; a first message is accepted for request times "
                         f"<= {latest_ns} ns only (block time + max_request_advance_s)")
        self.inference_id, self.request_ns = inference_id, request_ns
        self.block_ns, self.latest_ns = block_ns, latest_ns
