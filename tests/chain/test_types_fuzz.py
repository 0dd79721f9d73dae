"""Property tests: whatever bytes arrive, decode_tx either returns a canonical tx or raises
DecodeError; and every well-formed tx survives the trip to bytes and back unchanged.

Hypothesis runs derandomized, so a failure replays identically on every machine.
"""

from __future__ import annotations

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.types import MAX_AMOUNT, DecodeError, decode_tx, encode, sign_tx
from chain.types.common import MAX_INT64
from tests.chain.builders import ALICE, BOB, as_tree, body, exec_, grant, raw_msgpack, send, signed

FUZZ = settings(max_examples=400, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

VALID = encode(signed(send(), grant(), exec_(ALICE, send(frm=BOB)), memo="fuzz"))


def _decode_only_fails_cleanly(raw: bytes) -> None:
    try:
        tx = decode_tx(raw)
    except DecodeError as e:
        assert str(e).startswith("cannot decode Tx: ")
        return
    # Anything accepted is in canonical form: its encoding is the input, byte for byte.
    assert encode(tx) == raw


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_only_ever_raise_decode_error(raw):
    _decode_only_fails_cleanly(raw)


_mutation = st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
    st.integers(min_value=0, max_value=len(VALID) - 1),
    st.integers(min_value=0, max_value=255),
)


@FUZZ
@given(st.lists(_mutation, min_size=1, max_size=6))
def test_mutations_of_a_valid_tx_only_ever_raise_decode_error(mutations):
    # Given a valid tx's bytes with a few bytes flipped, overwritten, inserted or cut,
    raw = bytearray(VALID)
    for op, pos, value in mutations:
        pos %= max(len(raw), 1)
        if op == "flip":
            raw[pos:pos + 1] = bytes([raw[pos] ^ (1 << (value % 8))]) if raw else b""
        elif op == "set":
            raw[pos:pos + 1] = bytes([value])
        elif op == "insert":
            raw[pos:pos] = bytes([value])
        elif op == "delete":
            del raw[pos:pos + 1]
        else:
            del raw[pos:]
    # when decoded, then it is a canonical tx or a DecodeError, never anything else.
    _decode_only_fails_cleanly(bytes(raw))


_leaf = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
         | st.floats(allow_nan=True) | st.text(max_size=50) | st.binary(max_size=70))
_value = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=15), inner,
                                                                 max_size=4),
    max_leaves=12,
)


def _paths(tree, prefix=()):
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _paths(v, prefix + (i,))


TREE = as_tree(decode_tx(VALID))
PATHS = [p for p in _paths(TREE) if p]


@FUZZ
@given(st.sampled_from(PATHS), _value)
def test_any_field_replaced_by_any_value_only_ever_raises_decode_error(path, value):
    # Given the valid tx with one field (at any depth) replaced by an arbitrary MessagePack value,
    tree = msgspec.msgpack.decode(raw_msgpack(TREE))
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    # then decoding yields a canonical tx or a DecodeError.
    _decode_only_fails_cleanly(raw_msgpack(tree))


_memo = st.text(max_size=256)
_amount = st.integers(min_value=1, max_value=MAX_AMOUNT)
_height = st.integers(min_value=1, max_value=MAX_INT64)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(_amount, _memo, _height, st.sampled_from(["gonka-1", "a", "X.y_z-9" * 7]))
def test_every_well_formed_tx_round_trips_to_the_same_bytes(amount, memo, height, chain_id):
    # Given any amount, memo, timeout and chain id within the limits,
    tx = sign_tx(body(send(amount=amount), memo=memo, timeout_height=height, chain_id=chain_id),
                 ALICE)
    raw = encode(tx)
    # when the signed tx is encoded and decoded, then it is the same tx and it still verifies.
    again = decode_tx(raw)
    assert again == tx and encode(again) == raw
    again.validate_basic()
