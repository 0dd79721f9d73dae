"""Blocks and headers: round trips, the block hash, data hash, and a block's agreement with its
own header."""

from __future__ import annotations

import msgspec
import pytest

import native
from chain.crypto.hashing import blake3_256
from chain.types import (
    Block,
    BlockHeader,
    DecodeError,
    InvalidBlock,
    block_hash,
    data_hash,
    decode_block,
    encode,
    tx_hash,
)
from chain.types.block import MAX_BLOCK_BYTES
from chain.types.commit import NO_COMMIT_HASH
from tests.chain.builders import (
    ALICE,
    BOB,
    as_tree,
    block_id,
    chain_of_two,
    commit_for,
    make_block,
    raw_msgpack,
    send,
    signed,
)


def test_blocks_round_trip_with_the_same_bytes_and_hash():
    # Given the first block and the second (which carries the first one's commit),
    for block in chain_of_two():
        raw = encode(block)
        # when each goes over the wire, then it comes back identical, with the same hash.
        again = decode_block(raw)
        assert again == block and encode(again) == raw
        assert again.hash == block.hash == block_hash(block.header)
        again.validate_basic()


def test_the_block_hash_is_blake3_of_the_tagged_header():
    b1, _ = chain_of_two()
    assert b1.hash == blake3_256(encode(b1.header))
    doc = msgspec.msgpack.decode(encode(b1.header))
    assert list(doc) == ["type", *BlockHeader.__struct_fields__]
    assert doc["type"] == "gonka/BlockHeader"


@pytest.mark.parametrize(
    "field,value",
    [("height", 2), ("time_ns", 1), ("app_hash", bytes(32)), ("proposer", bytes(20)),
     ("chain_id", "gonka-other"), ("data_hash", bytes(32)), ("last_block_id", block_id(5))],
)
def test_every_header_field_changes_the_block_hash(field, value):
    b1, _ = chain_of_two()
    changed = msgspec.structs.replace(b1.header, **{field: value})
    assert block_hash(changed) != b1.hash


def test_data_hash_is_the_merkle_root_of_the_tx_hashes_in_order():
    txs = [encode(signed(send(amount=n))) for n in (1, 2, 3)]
    assert data_hash(txs) == native.merkle_root([tx_hash(t) for t in txs])
    assert data_hash(txs) != data_hash(txs[::-1])
    assert data_hash([]) == native.EMPTY_ROOT


def test_an_empty_block_is_valid():
    block = make_block(1, txs=[])
    block.validate_basic()
    assert decode_block(encode(block)) == block


def _break(block: Block, **header_changes) -> Block:
    return msgspec.structs.replace(
        block, header=msgspec.structs.replace(block.header, **header_changes))


def _contradictions():
    b1, b2 = chain_of_two()
    other_tx = encode(signed(send(frm=ALICE, to=BOB, amount=5)))
    return {
        "tx-added": (msgspec.structs.replace(b1, txs=(*b1.txs, other_tx)), "data_hash"),
        "tx-replaced": (msgspec.structs.replace(b1, txs=(other_tx,)), "data_hash"),
        "first-block-with-parent": (_break(b1, last_block_id=block_id(3)), "last_block_id"),
        "later-block-without-parent": (_break(b2, last_block_id=None), "last_block_id"),
        "first-block-with-commit": (
            msgspec.structs.replace(b1, last_commit=b2.last_commit), "last_commit must be absent"),
        "commit-hash-mismatch": (_break(b2, last_commit_hash=NO_COMMIT_HASH), "last_commit_hash"),
        "commit-for-other-height": (
            msgspec.structs.replace(b2, last_commit=commit_for(2, b2.header.last_block_id)),
            "last_commit is for height 2",
        ),
        "commit-for-other-block": (
            msgspec.structs.replace(b2, last_commit=commit_for(1, block_id(4))),
            "another block",
        ),
        "evidence-hash": (_break(b1, evidence_hash=bytes(32)), "evidence_hash"),
    }


CONTRADICTIONS = _contradictions()


@pytest.mark.parametrize("block,reason", CONTRADICTIONS.values(), ids=CONTRADICTIONS.keys())
def test_a_block_that_contradicts_its_header_is_invalid(block, reason):
    # Given a block whose content or header was altered after it was made,
    # when checked, then InvalidBlock names the height and what does not match.
    with pytest.raises(InvalidBlock, match=reason) as e:
        block.validate_basic()
    assert e.value.height == block.header.height


def _tree():
    return as_tree(chain_of_two()[1])


HOSTILE = {
    "garbage": (b"\x93\x01\x02", "Expected `object`, got `array`"),
    "oversized": (b"\x00" * (MAX_BLOCK_BYTES + 1), f"limit of {MAX_BLOCK_BYTES} bytes"),
    "height-zero": (raw_msgpack(_tree() | {"header": _tree()["header"] | {"height": 0}}),
                    "Expected `int` >= 1 - at `$.header.height`"),
    "short-app-hash": (
        raw_msgpack(_tree() | {"header": _tree()["header"] | {"app_hash": b"\x01" * 31}}),
        "length >= 32 - at `$.header.app_hash`"),
    "empty-tx": (raw_msgpack(_tree() | {"txs": [b""]}), "length >= 1 - at `$.txs[0]`"),
    "tx-not-bytes": (raw_msgpack(_tree() | {"txs": ["tx"]}), "Expected `bytes`, got `str`"),
    "parts-zero": (
        raw_msgpack(_tree() | {"header": _tree()["header"] | {
            "last_block_id": {"hash": bytes(32), "parts": {"total": 0, "root": bytes(32)}}}}),
        ">= 1 - at `$.header.last_block_id.parts.total`"),
    "unknown-header-field": (
        raw_msgpack(_tree() | {"header": _tree()["header"] | {"gas": 1}}), "unknown field `gas`"),
    # The same map announced with a 16-bit length instead of the canonical fixmap byte.
    "non-canonical": (b"\xde\x00" + bytes([len(Block.__struct_fields__)])
                      + encode(chain_of_two()[1])[1:], "non-canonical encoding"),
}


@pytest.mark.parametrize("raw,expected", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_block_bytes_raise_decode_error(raw, expected):
    with pytest.raises(DecodeError) as e:
        decode_block(raw)
    assert expected in str(e.value)
    assert str(e.value).startswith("cannot decode Block: ")
