"""What a validator makes of an executor's payload, and which inferences it must check. Pure: no
I/O, no clock.

* `Payload`: the executor's answer to the signed `GET /v1/inference/{id}/payload`.
* `check_payload`: the payload must be the one the chain recorded: BLAKE3(request) ==
  prompt_hash and BLAKE3(response) == response_hash (else the executor served something else:
  a failed validation).
* `recorded_positions`: the executor's reported output, position by position (first choice),
  from the recorded response: a chat completion JSON or its SSE lines. Tokens are kept as the
  recorded strings ("token_id:N" when the ML node was asked for ids, else the token's text);
  `token_ids` turns them into ids, given a resolver for texts (the ML node's tokenizer).
* `replay_messages`: the developer's chat messages, as the ML node's replay takes them.
* `must_validate`: the chain's skip rules of `required_validations` (own inference, models the
  validator or the executor does not serve in the epoch, no weight) around the ONE shared
  selection function `chain.app.validation.selection.should_validate`, so that the worker
  validates exactly what a claim will require (the end-of-epoch cutoff aside: an inference
  completed in the last blocks is still checked when there is time).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from chain.app.validation.params import ValidationParams
from chain.app.validation.selection import should_validate
from chain.crypto.hashing import blake3_256
from chain.types.inference_scoring import PositionLogprobs, TokenLogprob

TOKEN_ID_PREFIX = "token_id:"
MAX_TOP_K = 20  # the ML node's replay takes at most this many alternatives


class PayloadError(ValueError):
    """The payload is not what the chain recorded, or cannot be read: the executor's fault."""


class Payload(msgspec.Struct, frozen=True):
    inference_id: str
    epoch: int
    model: str
    request: str             # base64 of the developer's body
    response: str            # base64 of the recorded response
    response_hash: str
    prompt_tokens: int
    completion_tokens: int

    def request_bytes(self) -> bytes:
        return _b64(self.request, "request")

    def response_bytes(self) -> bytes:
        return _b64(self.response, "response")


def _b64(text: str, name: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as e:
        raise PayloadError(f"the payload's {name} is not base64: {e}") from None


def check_payload(payload: Payload, *, inference_id: bytes, model: str, prompt_hash: bytes,
                  response_hash: bytes) -> tuple[bytes, bytes]:
    """(request, response) bytes of a payload that matches the chain's record."""
    if payload.inference_id.lower() != inference_id.hex():
        raise PayloadError(f"the payload is for inference {payload.inference_id[:16]}...")
    request, response = payload.request_bytes(), payload.response_bytes()
    if blake3_256(request) != prompt_hash:
        raise PayloadError("BLAKE3(request) differs from the recorded prompt_hash")
    if blake3_256(response) != response_hash:
        raise PayloadError("BLAKE3(response) differs from the recorded response_hash")
    if payload.model != model:
        raise PayloadError(f"the payload names model {payload.model!r}, the record {model!r}")
    return request, response


# -- the recorded output ----------------------------------------------------------------------


class RecordedToken(msgspec.Struct, frozen=True):
    token: str
    logprob: float


class RecordedPosition(msgspec.Struct, frozen=True):
    token: str
    logprob: float
    top: tuple[RecordedToken, ...]


def _entries_of(obj: Any) -> list[Any]:
    if not isinstance(obj, dict):
        return []
    out: list[Any] = []
    for choice in obj.get("choices") or ():
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
                out.extend(logprobs["content"])
    return out


def _position(entry: Any, index: int) -> RecordedPosition:
    try:
        top = tuple(RecordedToken(str(t["token"]), float(t["logprob"]))
                    for t in entry.get("top_logprobs") or ())
        return RecordedPosition(str(entry["token"]), float(entry["logprob"]), top)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise PayloadError(f"logprob entry {index} of the response is malformed: {e!r}"
                           ) from None


def recorded_positions(response: bytes) -> list[RecordedPosition]:
    """The first choice's per-token logprobs of a recorded chat completion (JSON or SSE)."""
    entries: list[Any] = []
    try:
        entries = _entries_of(msgspec.json.decode(response))
    except msgspec.DecodeError:
        for line in response.split(b"\n"):
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[len(b"data:"):].strip()
            if data == b"[DONE]":
                continue
            try:
                entries.extend(_entries_of(msgspec.json.decode(data)))
            except msgspec.DecodeError:
                raise PayloadError(f"an SSE event of the response is not JSON: {data[:80]!r}"
                                   ) from None
    return [_position(e, i) for i, e in enumerate(entries)]


def top_k(positions: Sequence[RecordedPosition]) -> int:
    """How many alternatives to replay: as many as the executor reported (1..MAX_TOP_K)."""
    return min(MAX_TOP_K, max([len(p.top) for p in positions] + [1]))


def token_texts(positions: Sequence[RecordedPosition]) -> set[str]:
    """The recorded tokens that are texts, not "token_id:N" (to be resolved to ids)."""
    return {t for p in positions for t in (p.token, *(x.token for x in p.top))
            if not t.startswith(TOKEN_ID_PREFIX)}


def token_ids(positions: Sequence[RecordedPosition], text_ids: Mapping[str, int] | None = None
              ) -> list[PositionLogprobs]:
    """The positions with token ids: "token_id:N" read directly, texts through `text_ids`."""
    text_ids = text_ids or {}

    def tid(token: str) -> int:
        if token.startswith(TOKEN_ID_PREFIX):
            try:
                return int(token[len(TOKEN_ID_PREFIX):])
            except ValueError:
                raise PayloadError(f"bad token {token!r}") from None
        if token not in text_ids:
            raise PayloadError(f"token {token!r} is not one token of this model")
        return text_ids[token]

    return [PositionLogprobs(tid(p.token), p.logprob,
                             [TokenLogprob(tid(t.token), t.logprob) for t in p.top])
            for p in positions]


# -- the prompt -------------------------------------------------------------------------------


class ReplayMessage(msgspec.Struct, frozen=True):
    role: str
    content: str


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: the text parts, in order
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and p.get("type") == "text")
    return ""


def replay_messages(request: bytes) -> list[ReplayMessage]:
    try:
        body = msgspec.json.decode(request)
    except msgspec.DecodeError as e:
        raise PayloadError(f"the request is not JSON: {e}") from None
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        raise PayloadError("the request has no messages")
    out = []
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise PayloadError("a request message has no role")
        out.append(ReplayMessage(m["role"], _text(m.get("content"))))
    return out


# -- the decision -----------------------------------------------------------------------------


class Member(msgspec.Struct, frozen=True):
    """What the decision needs of an epoch group member (`epochs/group` members)."""

    address: str
    weight: int
    models: tuple[str, ...] = ()


class RecordDetails(msgspec.Struct, frozen=True):
    """The validation details the chain fixed on the inference record at completion."""

    id: bytes
    executor: str
    model: str
    epoch: int
    executor_reputation: int
    traffic_basis: int
    executor_power: int
    total_power: int


def must_validate(validator: str, seed: bytes, record: RecordDetails,
                  members: Callable[[str], Member | None], params: ValidationParams) -> bool:
    """Whether `validator`, with its seed for the record's epoch, must validate `record`
    (`members(address)`: that address's member record in the record's epoch)."""
    if record.executor == validator:
        return False
    me = members(validator)
    if me is None or me.weight <= 0 or record.model not in me.models:
        return False
    executor = members(record.executor)
    if executor is None or executor.weight <= 0 or record.model not in executor.models:
        return False
    return should_validate(seed, record.id, executor_reputation=record.executor_reputation,
                           traffic_basis=record.traffic_basis, validator_power=me.weight,
                           executor_power=record.executor_power,
                           total_power=record.total_power, params=params)
