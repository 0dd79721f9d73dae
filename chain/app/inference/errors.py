"""Errors of the inference module (codes 800-899, codespace "inference"). Ids appear as the
first 16 hex digits of the 64-byte developer signature."""

from __future__ import annotations

from chain.app.errors import TxError


def short_id(inference_id: bytes) -> str:
    return inference_id.hex()[:16]


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

    def __init__(self, inference_id: bytes, message: str) -> None:
        super().__init__(f"inference {short_id(inference_id)} already has its {message}")
        self.inference_id, self.message = inference_id, message


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
