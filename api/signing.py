"""Request signing on the inference path: developer -> transfer agent (TA) -> executor.

The wire (headers) and the signed bytes (`chain.types.inference`) are fixed by the chain, which
checks the same signatures in MsgStartInference / MsgFinishInference:

* the developer signs `request_sign_bytes(BLAKE3-256(raw body), timestamp_ns, TA address)` with
  its account key and sends `Authorization` (base64 of the 64-byte signature, which *is* the
  inference id), `X-Requester-Address`, `X-Requester-Pubkey` (hex, 33 bytes: the chain needs the
  key, the developer need not be a participant), `X-Timestamp` (Unix ns) and
  `X-Transfer-Address` (the TA it signed for);
* the TA forwards those unchanged with the raw body byte for byte, and adds `X-Inference-Id`
  (hex of the developer's signature), `X-Executor-Address`, `X-Model` and `X-TA-Signature`
  (base64 of its signature over `transfer_sign_bytes(body hash, ts, TA, executor, model)`, made
  with its account key or a warm key).

Pure: no I/O, no clock, no chain queries. The caller passes the TA's address, the chain's block
time and the TA's acceptable public keys. Every refusal is a `SigningError` subclass carrying its
data, an HTTP status and a short code; the HTTP boundary turns it into one JSON error.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Annotated, Any, ClassVar

import msgspec

import native
from chain.crypto.address import address_from_pubkey, address_to_bytes
from chain.crypto.errors import InvalidAddress
from chain.crypto.hashing import blake3_256
from chain.crypto.secp256k1 import PUBKEY_LENGTH, SIGNATURE_LENGTH, PrivateKey
from chain.types.inference import request_sign_bytes, transfer_sign_bytes

AUTHORIZATION = "Authorization"
REQUESTER_ADDRESS = "X-Requester-Address"
REQUESTER_PUBKEY = "X-Requester-Pubkey"
TIMESTAMP = "X-Timestamp"
TRANSFER_ADDRESS = "X-Transfer-Address"
INFERENCE_ID = "X-Inference-Id"
EXECUTOR_ADDRESS = "X-Executor-Address"
TA_SIGNATURE = "X-TA-Signature"
MODEL = "X-Model"

DEVELOPER_HEADERS = (AUTHORIZATION, REQUESTER_ADDRESS, REQUESTER_PUBKEY, TIMESTAMP,
                     TRANSFER_ADDRESS)
TRANSFER_HEADERS = (INFERENCE_ID, EXECUTOR_ADDRESS, MODEL, TA_SIGNATURE)

SECOND_NS = 1_000_000_000
# request_sign_bytes encodes the timestamp as a u64.
_MAX_TIMESTAMP = 2**64 - 1
_DECIMAL = re.compile(r"[0-9]{1,20}")


# ---- errors -------------------------------------------------------------------------------


class SigningError(Exception):
    """A request refused on its signature headers. `status` is the HTTP status to answer with,
    `code` a stable short name for the JSON error body, `str(error)` the message."""

    status: ClassVar[int] = 401
    code: ClassVar[str] = "invalid_signature"


class MissingSignature(SigningError):
    code = "missing_signature"

    def __init__(self) -> None:
        super().__init__(f"{AUTHORIZATION} is required: sign the request with your account key "
                         "(api.client.gonka_http_client does it for the openai client)")


class BearerToken(MissingSignature):
    """The OpenAI client's `Authorization: Bearer <api_key>` reached us unsigned."""

    def __init__(self) -> None:
        SigningError.__init__(
            self, f"{AUTHORIZATION} carries a bearer token, not a request signature: gonka has "
            "no API keys; sign each request with your account key (pass "
            "http_client=api.client.gonka_http_client(key, url) to the openai client)")


class MissingHeader(SigningError):
    code = "missing_header"

    def __init__(self, header: str) -> None:
        super().__init__(f"header {header} is required")
        self.header = header


class MalformedHeader(SigningError):
    code = "malformed_header"

    def __init__(self, header: str, value: str, reason: str) -> None:
        shown = value if len(value) <= 140 else value[:140] + "..."
        super().__init__(f"header {header} = {shown!r}: {reason}")
        self.header, self.value, self.reason = header, value, reason


class BadTimestamp(MalformedHeader):
    code = "bad_timestamp"

    def __init__(self, value: str) -> None:
        super().__init__(TIMESTAMP, value, "expected the request time in Unix nanoseconds, "
                         "a decimal integer in [1, 2^64)")


class AddressMismatch(SigningError):
    code = "address_mismatch"

    def __init__(self, address: str, pubkey: bytes) -> None:
        super().__init__(f"{REQUESTER_PUBKEY} {pubkey.hex()} is the key of "
                         f"{address_from_pubkey(pubkey)}, not of {REQUESTER_ADDRESS} {address}")
        self.address, self.pubkey = address, pubkey


class WrongTransferAgent(SigningError):
    code = "wrong_transfer_agent"

    def __init__(self, signed_for: str, transfer_agent: str) -> None:
        super().__init__(f"the request was signed for transfer agent {signed_for}, but it was "
                         f"sent to {transfer_agent}: sign for the node you send to "
                         "(its address is in GET /v1/status)")
        self.signed_for, self.transfer_agent = signed_for, transfer_agent


class BadSignature(SigningError):
    code = "invalid_signature"

    def __init__(self, requester: str, transfer_agent: str, timestamp_ns: int) -> None:
        super().__init__(f"{AUTHORIZATION} is not {requester}'s signature of this body at "
                         f"{TIMESTAMP} {timestamp_ns} for transfer agent {transfer_agent} (was "
                         "the body changed after signing, or signed with another key?)")
        self.requester, self.transfer_agent = requester, transfer_agent
        self.timestamp_ns = timestamp_ns


class RequestTimeError(SigningError):
    """The request time is outside the chain's window: a well-signed request that the chain
    would refuse (RequestTooOld 810 / RequestFromFuture 811), so it is refused here first."""

    status = 400


class RequestTooOld(RequestTimeError):
    code = "request_too_old"

    def __init__(self, timestamp_ns: int, chain_time_ns: int, max_age_s: int) -> None:
        super().__init__(f"request timestamp {timestamp_ns} is "
                         f"{_seconds(chain_time_ns - timestamp_ns)} older than the chain time "
                         f"{chain_time_ns}; at most {max_age_s} s is accepted "
                         "(sign again with the current time)")
        self.timestamp_ns, self.chain_time_ns, self.max_age_s = (timestamp_ns, chain_time_ns,
                                                                 max_age_s)


class RequestFromFuture(RequestTimeError):
    code = "request_from_future"

    def __init__(self, timestamp_ns: int, chain_time_ns: int, max_advance_s: int) -> None:
        super().__init__(f"request timestamp {timestamp_ns} is "
                         f"{_seconds(timestamp_ns - chain_time_ns)} ahead of the chain time "
                         f"{chain_time_ns}; at most {max_advance_s} s is accepted "
                         "(is your clock right?)")
        self.timestamp_ns, self.chain_time_ns, self.max_advance_s = (timestamp_ns,
                                                                     chain_time_ns, max_advance_s)


class InferenceIdMismatch(SigningError):
    code = "inference_id_mismatch"

    def __init__(self, header: str, signature: bytes) -> None:
        super().__init__(f"{INFERENCE_ID} {header!r} is not the developer's signature "
                         f"{signature.hex()}")
        self.header, self.signature = header, signature


class WrongExecutor(SigningError):
    code = "wrong_executor"

    def __init__(self, named: str, executor: str) -> None:
        super().__init__(f"the transfer agent sent this request to executor {named}, "
                         f"not to {executor}")
        self.named, self.executor = named, executor


class ModelMismatch(SigningError):
    code = "model_mismatch"

    def __init__(self, header: str, body_model: str) -> None:
        super().__init__(f"{MODEL} {header!r} differs from the body's model {body_model!r}")
        self.header, self.body_model = header, body_model


class BadTransferSignature(SigningError):
    code = "invalid_transfer_signature"

    def __init__(self, transfer_agent: str, executor: str, model: str) -> None:
        super().__init__(f"{TA_SIGNATURE} is not a signature of transfer agent {transfer_agent} "
                         f"(account or warm key) for executor {executor} and model {model!r}")
        self.transfer_agent, self.executor, self.model = transfer_agent, executor, model


class InvalidBody(SigningError):
    """The body is not a chat-completions request we can account for (400)."""

    status = 400
    code = "invalid_request_body"

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid chat completions request: {reason}")
        self.reason = reason


def _seconds(ns: int) -> str:
    return f"{ns / SECOND_NS:.3f} s"


# ---- the body -----------------------------------------------------------------------------


class ChatMessage(msgspec.Struct, frozen=True):
    role: str = ""
    # A string, a list of content parts, or null (an assistant turn with tool calls).
    content: str | list[Any] | None = None


class ChatRequest(msgspec.Struct, frozen=True):
    """What the API node reads of an OpenAI chat-completions body. Unknown fields are ignored,
    not refused: the body is forwarded byte for byte (it is signed), never re-encoded."""

    model: Annotated[str, msgspec.Meta(min_length=1)]
    messages: list[ChatMessage] = []
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    max_completion_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    stream: bool | None = None
    seed: int | None = None

    @property
    def token_limit(self) -> int | None:
        """The completion limit asked for: `max_completion_tokens` (OpenAI's current name)
        first, else `max_tokens`, else None (the node's default applies)."""
        return self.max_completion_tokens or self.max_tokens

    def prompt_text(self) -> str:
        """The text of all messages (string contents and text parts), one per line."""
        parts: list[str] = []
        for message in self.messages:
            if isinstance(message.content, str):
                parts.append(message.content)
            elif message.content is not None:
                parts.extend(p["text"] for p in message.content
                             if isinstance(p, dict) and isinstance(p.get("text"), str))
        return "".join(p + "\n" for p in parts)


_chat_decoder = msgspec.json.Decoder(ChatRequest)


def parse_chat_request(body: bytes) -> ChatRequest:
    """Decode (= validate) the body; InvalidBody with msgspec's message otherwise."""
    try:
        return _chat_decoder.decode(body)
    except msgspec.DecodeError as e:
        raise InvalidBody(str(e)) from None


# ---- developer -> transfer agent ---------------------------------------------------------


class RequestSignature(msgspec.Struct, frozen=True):
    """The developer's signature headers, decoded. `signature` is the inference id."""

    signature: bytes
    requester_address: str
    requester_pubkey: bytes
    timestamp_ns: int
    transfer_address: str

    def headers(self) -> dict[str, str]:
        return {
            AUTHORIZATION: base64.b64encode(self.signature).decode(),
            REQUESTER_ADDRESS: self.requester_address,
            REQUESTER_PUBKEY: self.requester_pubkey.hex(),
            TIMESTAMP: str(self.timestamp_ns),
            TRANSFER_ADDRESS: self.transfer_address,
        }


class VerifiedRequest(msgspec.Struct, frozen=True):
    """A request whose developer signature checked out (its time is checked separately,
    against chain time: `check_timestamp`)."""

    signature: RequestSignature
    prompt_hash: bytes  # BLAKE3-256 of the raw body

    @property
    def inference_id(self) -> bytes:
        return self.signature.signature

    @property
    def requester(self) -> str:
        return self.signature.requester_address

    @property
    def timestamp_ns(self) -> int:
        return self.signature.timestamp_ns

    @property
    def transfer_agent(self) -> str:
        return self.signature.transfer_address


def sign_request(key: PrivateKey, body: bytes, ta_address: str,
                 timestamp_ns: int) -> dict[str, str]:
    """The developer's headers for `body` sent to the transfer agent `ta_address`."""
    return request_signature(key, body, ta_address, timestamp_ns).headers()


def request_signature(key: PrivateKey, body: bytes, ta_address: str,
                      timestamp_ns: int) -> RequestSignature:
    if not 0 < timestamp_ns <= _MAX_TIMESTAMP:
        raise ValueError(f"timestamp_ns must be in [1, 2^64), got {timestamp_ns}")
    address_to_bytes(ta_address)  # a typo here would only show as a refused signature
    signed = request_sign_bytes(blake3_256(body), timestamp_ns, ta_address)
    return RequestSignature(signature=key.sign(signed), requester_address=key.address,
                            requester_pubkey=key.public_key, timestamp_ns=timestamp_ns,
                            transfer_address=ta_address)


def verify_developer(headers: Mapping[str, str], body: bytes,
                     ta_address: str) -> VerifiedRequest:
    """Check the developer's signature of `body` for the transfer agent `ta_address`.

    Refusals, in order: MissingSignature / BearerToken, MissingHeader, MalformedHeader /
    BadTimestamp, WrongTransferAgent (signed for another TA), AddressMismatch (the key does not
    derive to the claimed address), BadSignature. An absent X-Transfer-Address means "this
    TA", as in the reference. The time window is `check_timestamp`'s job."""
    h = _lower(headers)
    signature = _parse_developer(h, default_transfer=ta_address)
    if signature.transfer_address != ta_address:
        raise WrongTransferAgent(signature.transfer_address, ta_address)
    return _verify_developer(signature, body)


def check_timestamp(timestamp_ns: int, chain_time_ns: int, max_age_s: int,
                    max_advance_s: int) -> None:
    """The chain's window for a first message (inference params max_request_age_s and
    max_request_advance_s): [chain time - age, chain time + advance], both ends included."""
    if timestamp_ns < chain_time_ns - max_age_s * SECOND_NS:
        raise RequestTooOld(timestamp_ns, chain_time_ns, max_age_s)
    if timestamp_ns > chain_time_ns + max_advance_s * SECOND_NS:
        raise RequestFromFuture(timestamp_ns, chain_time_ns, max_advance_s)


def _verify_developer(signature: RequestSignature, body: bytes) -> VerifiedRequest:
    if address_from_pubkey(signature.requester_pubkey) != signature.requester_address:
        raise AddressMismatch(signature.requester_address, signature.requester_pubkey)
    prompt_hash = blake3_256(body)
    signed = request_sign_bytes(prompt_hash, signature.timestamp_ns, signature.transfer_address)
    if not native.verify_secp256k1(signature.requester_pubkey, signed, signature.signature):
        raise BadSignature(signature.requester_address, signature.transfer_address,
                           signature.timestamp_ns)
    return VerifiedRequest(signature=signature, prompt_hash=prompt_hash)


def _parse_developer(h: dict[str, str], default_transfer: str | None) -> RequestSignature:
    auth = h.get(AUTHORIZATION.lower(), "").strip()
    if not auth:
        raise MissingSignature()
    if auth.lower().startswith("bearer "):
        raise BearerToken()
    signature = _b64_signature(AUTHORIZATION, auth)
    address = _address(h, REQUESTER_ADDRESS)
    pubkey_text = _required(h, REQUESTER_PUBKEY)
    try:
        pubkey = bytes.fromhex(pubkey_text)
    except ValueError:
        raise MalformedHeader(REQUESTER_PUBKEY, pubkey_text, "not hex") from None
    if len(pubkey) != PUBKEY_LENGTH or pubkey[0] not in (2, 3):
        raise MalformedHeader(REQUESTER_PUBKEY, pubkey_text,
                              "expected a 33-byte compressed secp256k1 key (66 hex characters)")
    ts_text = _required(h, TIMESTAMP)
    if not _DECIMAL.fullmatch(ts_text) or not 0 < int(ts_text) <= _MAX_TIMESTAMP:
        raise BadTimestamp(ts_text)
    if default_transfer is not None and not h.get(TRANSFER_ADDRESS.lower()):
        transfer = default_transfer
    else:
        transfer = _address(h, TRANSFER_ADDRESS)
    return RequestSignature(signature=signature, requester_address=address,
                            requester_pubkey=pubkey, timestamp_ns=int(ts_text),
                            transfer_address=transfer)


# ---- transfer agent -> executor ----------------------------------------------------------


class VerifiedTransfer(msgspec.Struct, frozen=True):
    """A forwarded request whose developer and TA signatures checked out."""

    request: VerifiedRequest
    executor: str
    model: str
    transfer_signature: bytes
    signed_by: bytes  # the TA public key (account or warm) that verified
    chat: ChatRequest

    @property
    def inference_id(self) -> bytes:
        return self.request.inference_id


def sign_transfer(key: PrivateKey, request: VerifiedRequest, executor: str,
                  model: str) -> dict[str, str]:
    """The headers the TA adds when it forwards `request` to `executor`; `key` is its account
    key or a warm key granted MsgStartInference. Forward them with `request.signature.headers()`
    and the raw body. The same signature goes into MsgStartInference.transfer_signature."""
    address_to_bytes(executor)
    signed = transfer_sign_bytes(request.prompt_hash, request.timestamp_ns,
                                 request.transfer_agent, executor, model)
    return {
        INFERENCE_ID: request.inference_id.hex(),
        EXECUTOR_ADDRESS: executor,
        MODEL: model,
        TA_SIGNATURE: base64.b64encode(key.sign(signed)).decode(),
    }


def transfer_agent_of(headers: Mapping[str, str]) -> str:
    """The TA a forwarded request names (X-Transfer-Address): whose keys the executor must look
    up before `verify_transfer`."""
    return _address(_lower(headers), TRANSFER_ADDRESS)


def verify_transfer(headers: Mapping[str, str], body: bytes, executor_address: str,
                    ta_pubkeys: Iterable[bytes]) -> VerifiedTransfer:
    """The executor's check of a forwarded request: the developer's signature for the TA in
    X-Transfer-Address, X-Inference-Id = that signature, the request is for this executor, X-Model
    = the body's model, and X-TA-Signature made by one of `ta_pubkeys` (the TA's account key and
    its warm keys, from the chain). Time window: `check_timestamp`, as on the TA."""
    h = _lower(headers)
    signature = _parse_developer(h, default_transfer=None)
    id_text = _required(h, INFERENCE_ID)
    if id_text.lower() != signature.signature.hex():
        raise InferenceIdMismatch(id_text, signature.signature)
    executor = _address(h, EXECUTOR_ADDRESS)
    if executor != executor_address:
        raise WrongExecutor(executor, executor_address)
    model = _required(h, MODEL)
    ta_signature = _b64_signature(TA_SIGNATURE, _required(h, TA_SIGNATURE))
    request = _verify_developer(signature, body)
    chat = parse_chat_request(body)
    if chat.model != model:
        raise ModelMismatch(model, chat.model)
    signed = transfer_sign_bytes(request.prompt_hash, request.timestamp_ns,
                                 request.transfer_agent, executor, model)
    keys: Collection[bytes] = tuple(ta_pubkeys)
    for key in keys:
        if native.verify_secp256k1(key, signed, ta_signature):
            return VerifiedTransfer(request=request, executor=executor, model=model,
                                    transfer_signature=ta_signature, signed_by=key, chat=chat)
    raise BadTransferSignature(request.transfer_agent, executor, model)


# ---- header parsing ----------------------------------------------------------------------


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    # Quart's and httpx's headers are case-insensitive, a plain dict is not.
    return {k.lower(): v for k, v in headers.items()}


def _required(h: dict[str, str], header: str) -> str:
    value = h.get(header.lower(), "").strip()
    if not value:
        raise MissingHeader(header)
    return value


def _address(h: dict[str, str], header: str) -> str:
    value = _required(h, header)
    try:
        address_to_bytes(value)
    except InvalidAddress as e:
        raise MalformedHeader(header, value, e.reason) from None
    return value


def _b64_signature(header: str, value: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedHeader(header, value, "not standard base64") from None
    if len(raw) != SIGNATURE_LENGTH:
        raise MalformedHeader(header, value,
                              f"a signature is {SIGNATURE_LENGTH} bytes, this is {len(raw)}")
    return raw


# -- validators fetching an executor's payload -----------------------------------------------
#
# A validator asks the executor for the exact request and response of an inference it must
# re-execute: `GET /v1/inference/{id hex}/payload` with `X-Validator-Address`, `X-Timestamp` and
# `Authorization` = base64 secp256k1 signature over `payload_request_bytes(id, validator, ts)`
# by the validator's account key or one of its warm keys (grantees of validation/MsgValidation).
# The executor serves it only to members with weight of the inference's epoch group, inside the
# chain's request time window.

VALIDATOR_ADDRESS = "X-Validator-Address"
PAYLOAD_DOMAIN = b"gonka/api/payload-request/v1\x00"


def payload_request_bytes(inference_id: bytes, validator: str, timestamp_ns: int) -> bytes:
    raw = validator.encode()
    return (PAYLOAD_DOMAIN + len(inference_id).to_bytes(2, "big") + inference_id
            + len(raw).to_bytes(2, "big") + raw + timestamp_ns.to_bytes(8, "big"))


def sign_payload_request(key: PrivateKey, inference_id: bytes, validator: str,
                         timestamp_ns: int) -> dict[str, str]:
    """The headers of a validator's payload request (`key`: its account or warm key)."""
    signature = key.sign(payload_request_bytes(inference_id, validator, timestamp_ns))
    return {AUTHORIZATION: base64.b64encode(signature).decode(), VALIDATOR_ADDRESS: validator,
            TIMESTAMP: str(timestamp_ns)}


class PayloadRequest(msgspec.Struct, frozen=True):
    validator: str
    timestamp_ns: int


def verify_payload_request(headers: Mapping[str, str], inference_id: bytes,
                           validator_pubkeys: Iterable[bytes]) -> PayloadRequest:
    """The validator and time of a payload request signed by one of `validator_pubkeys` (its
    account key and warm keys, which the caller looks up for the claimed address); raises
    SigningError subclasses (401) otherwise. Membership and the time window are the caller's."""
    h = _lower(headers)
    auth = h.get(AUTHORIZATION.lower(), "").strip()
    if not auth:
        raise MissingSignature()
    signature = _b64_signature(AUTHORIZATION, auth)
    validator = _address(h, VALIDATOR_ADDRESS)
    ts_text = _required(h, TIMESTAMP)
    if not _DECIMAL.fullmatch(ts_text) or not 0 < int(ts_text) <= _MAX_TIMESTAMP:
        raise BadTimestamp(ts_text)
    message = payload_request_bytes(inference_id, validator, int(ts_text))
    if not any(native.verify_secp256k1(k, message, signature) for k in validator_pubkeys):
        raise BadPayloadSignature(validator)
    return PayloadRequest(validator=validator, timestamp_ns=int(ts_text))


class BadPayloadSignature(SigningError):
    code = "invalid_signature"

    def __init__(self, validator: str) -> None:
        super().__init__(f"the payload request is not signed by {validator} or one of its warm "
                         "keys")
        self.validator = validator
