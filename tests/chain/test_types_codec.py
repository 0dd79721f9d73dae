"""The codec: deterministic encoding, the one error type, size limits, JSON for RPC."""

from __future__ import annotations

import msgspec
import pytest

from chain.types import (
    Block,
    DecodeError,
    Tx,
    Vote,
    decode,
    encode,
    from_json,
    to_json,
    validated,
)
from chain.types.codec import MAX_JSON_BYTES
from tests.chain.builders import chain_of_two, send, signed, unsigned_vote


def test_dict_keys_are_encoded_sorted_whatever_the_insertion_order():
    assert encode({"b": 1, "a": 2, "c": {"z": 1, "y": 2}}) == encode(
        {"c": {"y": 2, "z": 1}, "a": 2, "b": 1}
    )


def test_decode_error_is_a_value_error_carrying_type_and_reason():
    with pytest.raises(ValueError) as e:
        decode(b"\xc1", Tx)
    assert isinstance(e.value, DecodeError)
    assert e.value.type_name == "Tx"
    assert "malformed" in e.value.reason


def test_max_size_is_the_callers_limit():
    raw = encode(signed())
    assert decode(raw, Tx, max_size=len(raw)) == signed()
    with pytest.raises(DecodeError, match=f"{len(raw)} bytes exceeds the limit of {len(raw) - 1}"):
        decode(raw, Tx, max_size=len(raw) - 1)


class _Exploding(msgspec.Struct, frozen=True):
    x: int

    def __post_init__(self) -> None:
        # msgspec passes on exceptions other than ValueError/TypeError from __post_init__ as-is.
        raise KeyError("a bug, not a validation failure")


def test_any_other_exception_while_decoding_becomes_a_decode_error():
    # Given a type whose validation fails with an unexpected exception type,
    with pytest.raises(DecodeError, match="KeyError: 'a bug, not a validation failure'"):
        # when untrusted bytes are decoded as it, then the caller still sees only DecodeError.
        decode(encode({"x": 1}), _Exploding)


def test_validated_applies_decode_rules_to_values_built_in_python():
    # Given a message built in Python with a negative amount (Meta ranges only bind on decode),
    built = send(amount=-5)
    # then validated() rejects it the way a peer would.
    with pytest.raises(DecodeError, match="Expected `int` >= 1 - at `\\$.amount`"):
        validated(built)
    assert validated(send()) == send()


@pytest.mark.parametrize(
    "value,type_",
    [
        (signed(), Tx),
        (chain_of_two()[1], Block),
        (unsigned_vote(), Vote),
    ],
    ids=["tx", "block", "vote"],
)
def test_json_round_trips(value, type_):
    # Given a wire value, when written as JSON for RPC and read back (from bytes or text),
    text = to_json(value)
    # then it is the same value, bytes fields travelling as base64.
    assert from_json(text, type_) == value
    assert from_json(text.decode(), type_) == value


@pytest.mark.parametrize(
    "data,expected",
    [
        (b"{", "truncated"),
        (b"[]", "Expected `object`, got `array`"),
        (b'{"body": 1, "pubkey": "", "signature": ""}',
         "Expected `object`, got `int` - at `$.body`"),
        ("\ud800", "invalid"),
        (42, "expected bytes, got int"),
        (b" " * (MAX_JSON_BYTES + 1), "exceeds the limit"),
    ],
    ids=["truncated", "wrong-shape", "wrong-field-type", "lone-surrogate", "not-bytes",
         "oversized"],
)
def test_bad_json_raises_decode_error(data, expected):
    with pytest.raises(DecodeError) as e:
        from_json(data, Tx)
    assert expected in str(e.value)


def test_json_of_a_tx_with_a_bad_address_raises_decode_error():
    text = to_json(signed()).replace(b"gonka1", b"GONKA1", 1)
    with pytest.raises(DecodeError) as e:
        from_json(text, Tx)
    assert "addresses are lower case - at `$.body.messages[0]`" in str(e.value)
