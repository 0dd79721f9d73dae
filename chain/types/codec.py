"""The one way wire types become bytes and bytes become wire types (DESIGN.md section 3).

MessagePack is the canonical form: what is signed, hashed, gossiped and stored. Struct fields are
written in declaration order and dict keys sorted, so one value has exactly one encoding.
`decode` enforces the converse: it re-encodes what it decoded and rejects the input unless the
bytes are identical. Without that, one signed transaction could be re-encoded (a wider integer
form, reordered or duplicated map keys, a missing default field) into many byte strings with
different hashes, each a fresh replay of the same signature.

JSON (`to_json` / `from_json`) is for RPC and HTTP only; it is never signed or hashed, so it has no
canonical check.

Decoding untrusted input raises `DecodeError` and nothing else, whatever the bytes. This module
must never do I/O or keep state beyond its cached decoders.
"""

from __future__ import annotations

import typing
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

# Default ceiling on one MessagePack value: a transaction. Larger containers (blocks, commits)
# pass their own limit, defined next to their type.
MAX_TX_BYTES = 1 << 20
# JSON spells bytes in base64 (4/3 larger) and repeats field names: twice the binary ceiling.
MAX_JSON_BYTES = 2 * MAX_TX_BYTES


class DecodeError(ValueError):
    """Bytes that are not a valid, canonical encoding of the expected type.

    The only error any decode of untrusted input raises. `type_name` names the type that was
    expected and `reason` says what was wrong, with msgspec's path (`at $.body.memo`) when the
    fault is inside the value.
    """

    def __init__(self, type_name: str, reason: str) -> None:
        super().__init__(f"cannot decode {type_name}: {reason}")
        self.type_name = type_name
        self.reason = reason


_encoder = msgspec.msgpack.Encoder(order="deterministic")
_json_encoder = msgspec.json.Encoder(order="deterministic")
# Decoders are built once per type: building one resolves every annotation of the type tree.
_decoders: dict[Any, msgspec.msgpack.Decoder] = {}
_json_decoders: dict[Any, msgspec.json.Decoder] = {}


def encode(obj: Any) -> bytes:
    """The canonical MessagePack bytes of `obj` (what is signed, hashed and sent)."""
    return _encoder.encode(obj)


def to_json(obj: Any) -> bytes:
    """JSON for RPC and HTTP bodies: bytes as base64, struct fields in declaration order."""
    return _json_encoder.encode(obj)


def type_name(type_: Any) -> str:
    """A short name for messages: "Tx", or "MsgSend | MsgGrant" for a union."""
    if typing.get_origin(type_) is typing.Union:
        return " | ".join(type_name(t) for t in typing.get_args(type_))
    return getattr(type_, "__name__", None) or repr(type_)


def _as_bytes(data: object, name: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise DecodeError(name, f"expected bytes, got {type(data).__name__}")


def _check_size(size: int, max_size: int, name: str) -> None:
    if size > max_size:
        raise DecodeError(name, f"{size} bytes exceeds the limit of {max_size} bytes")


def _reason(e: BaseException) -> str:
    # msgspec's own messages already say what and where ("Expected `int`, got `str` - at `$.x`");
    # anything else (RecursionError on absurd nesting, a bug in a __post_init__) gets its type too.
    if isinstance(e, msgspec.MsgspecError):
        return str(e)
    if isinstance(e, RecursionError):
        return f"nested too deeply ({e})"
    return f"{type(e).__name__}: {e}"


def _first_difference(a: bytes, b: bytes) -> int:
    # Binary search on prefix equality: a few C-speed compares instead of a Python loop over up
    # to a megabyte, since any peer can make us take this path.
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def decode(data: bytes, type_: type[T], *, max_size: int = MAX_TX_BYTES) -> T:
    """Decode canonical MessagePack `data` as `type_`, validating every constraint.

    Raises DecodeError for input over `max_size` bytes, malformed or truncated MessagePack,
    trailing bytes, a value that breaks a type constraint or a `__post_init__` check, and an
    encoding that is valid but not the canonical one.
    """
    name = type_name(type_)
    data = _as_bytes(data, name)
    _check_size(len(data), max_size, name)
    decoder = _decoders.get(type_)
    if decoder is None:
        # Outside the try: the type is ours, not the sender's, so a bad one is a bug to surface.
        decoder = _decoders.setdefault(type_, msgspec.msgpack.Decoder(type_))
    try:
        value = decoder.decode(data)
        again = _encoder.encode(value)
    except Exception as e:  # noqa: BLE001 - the contract is one error type for untrusted input
        raise DecodeError(name, _reason(e)) from e
    if again != data:
        at = _first_difference(again, data)
        raise DecodeError(
            name,
            f"non-canonical encoding ({len(data)} bytes, canonical form is {len(again)} bytes; "
            f"first difference at byte {at})",
        )
    return value


def from_json(data: bytes | str, type_: type[T], *, max_size: int = MAX_JSON_BYTES) -> T:
    """Decode a JSON RPC/HTTP body as `type_`; raises DecodeError (no canonical check)."""
    name = type_name(type_)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    data = _as_bytes(data, name)
    _check_size(len(data), max_size, name)
    decoder = _json_decoders.get(type_)
    if decoder is None:
        decoder = _json_decoders.setdefault(type_, msgspec.json.Decoder(type_))
    try:
        return decoder.decode(data)
    except Exception as e:  # noqa: BLE001 - see decode()
        raise DecodeError(name, _reason(e)) from e


def validated(obj: T, *, max_size: int = MAX_TX_BYTES) -> T:
    """`obj` checked against the rules decoding applies (lengths, ranges, tags); raises DecodeError.

    Constructing a Struct in Python checks only `__post_init__`, not the `Meta` constraints of
    its annotations. Anything about to be signed goes through here first, so that a node never
    signs what its peers would refuse to decode.
    """
    return decode(encode(obj), type(obj), max_size=max_size)
