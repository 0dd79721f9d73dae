"""Transactions: canonical sign bytes, hashes, signatures, signers, and decoding hostile bytes."""

from __future__ import annotations

import msgspec
import pytest

from chain.types import (
    MAX_TX_BYTES,
    BadSignature,
    DecodeError,
    Tx,
    TxBody,
    WrongSigner,
    decode_tx,
    encode,
    sign_bytes,
    sign_tx,
    tx_hash,
)
from chain.types.tx import MAX_MEMO_CHARS, MAX_TX_MSGS
from tests.chain.builders import (
    ALICE,
    BOB,
    CAROL,
    as_tree,
    body,
    exec_,
    grant,
    raw_msgpack,
    send,
    signed,
)

# The sign bytes of `body()` (ALICE sends 1 gonka to BOB, memo "golden", timeout 100, chain
# "gonka-test-1") and the hash of that body signed by ALICE. If either changes, every signature
# and tx hash on an existing chain changes with it: that must be a deliberate, announced decision.
GOLDEN_SIGN_BYTES = bytes.fromhex(
    "85a474797065ac676f6e6b612f5478426f6479a8636861696e5f6964ac676f6e6b612d746573742d31a86d65"
    "7373616765739184a474797065ac62616e6b2f4d736753656e64ac66726f6d5f61646472657373d92c676f6e"
    "6b613130786371707a726b793665666632673532716479653533786b6b396a786b76723334617a3870aa746f"
    "5f61646472657373d92c676f6e6b613161307177757a65326838357a77376e7170736a336761307a39676579"
    "72677770383271766176a6616d6f756e74ce3b9aca00a46d656d6fa6676f6c64656eae74696d656f75745f68"
    "656967687464"
)
GOLDEN_TX_HASH = "814e61794735e887bdefe1249c69af9bdb6143c3ee4c0d7fa1bd97f5de2ca290"


def test_sign_bytes_match_the_golden_vector():
    # Given the fixed body, when its sign bytes are computed, then they are the pinned bytes.
    assert sign_bytes(body()) == GOLDEN_SIGN_BYTES


def test_tx_hash_matches_the_golden_vector_from_object_and_from_raw_bytes():
    # Given the fixed body signed by ALICE (RFC 6979 nonces: the signature is deterministic),
    tx = signed()
    # then its hash, and the hash of its raw bytes, are the pinned hash.
    assert tx.hash.hex() == GOLDEN_TX_HASH
    assert tx_hash(encode(tx)).hex() == GOLDEN_TX_HASH


def test_sign_bytes_are_tagged_and_in_declaration_order():
    # Given the sign bytes of a body, when read back as a plain map,
    doc = msgspec.msgpack.decode(sign_bytes(body()))
    # then the tag comes first, then the fields exactly as TxBody declares them.
    assert list(doc) == ["type", *TxBody.__struct_fields__]
    assert doc["type"] == "gonka/TxBody"
    assert list(doc["messages"][0]) == ["type", "from_address", "to_address", "amount"]


def test_a_signed_tx_round_trips_with_the_same_bytes_and_hash():
    tx = signed(send(), grant(), memo="many", timeout_height=7)
    raw = encode(tx)
    again = decode_tx(raw)
    assert again == tx
    assert encode(again) == raw
    assert again.hash == tx.hash == tx_hash(raw)


def test_the_signature_verifies_and_the_signer_checks_pass():
    tx = signed()
    assert tx.verify_signature()
    assert tx.signer == ALICE.address
    tx.validate_basic()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda b: body(send(amount=2_000_000_000)), id="amount"),
        pytest.param(lambda b: body(memo="other"), id="memo"),
        pytest.param(lambda b: body(timeout_height=101), id="timeout_height"),
        pytest.param(lambda b: body(chain_id="gonka-other"), id="other-chain-id"),
    ],
)
def test_a_signature_over_one_body_does_not_verify_for_another(tamper):
    # Given a tx signed by ALICE, when its body is swapped for a slightly different one,
    tx = signed()
    forged = Tx(body=tamper(tx.body), pubkey=tx.pubkey, signature=tx.signature)
    # then the signature no longer verifies, and validate_basic says so with a typed error.
    assert not forged.verify_signature()
    with pytest.raises(BadSignature, match="does not verify"):
        forged.validate_basic()


def test_a_signature_by_another_key_does_not_verify():
    # Given ALICE's body carrying ALICE's public key but CAROL's signature over it,
    b = body()
    forged = Tx(body=b, pubkey=ALICE.public_key, signature=CAROL.sign(sign_bytes(b)))
    # then it is rejected.
    assert not forged.verify_signature()
    with pytest.raises(BadSignature):
        forged.validate_basic()


def test_a_tx_signed_by_someone_other_than_the_message_signer_is_rejected():
    # Given ALICE's send signed (validly) by BOB,
    b = body(send(frm=ALICE))
    tx = Tx(body=b, pubkey=BOB.public_key, signature=BOB.sign(sign_bytes(b)))
    assert tx.verify_signature()
    # when signers are checked, then message 0 is named with who should have signed.
    with pytest.raises(WrongSigner) as e:
        tx.validate_basic()
    assert (e.value.index, e.value.expected, e.value.signer) == (0, ALICE.address, BOB.address)


def test_sign_tx_refuses_a_key_that_is_not_the_signer():
    with pytest.raises(WrongSigner):
        sign_tx(body(send(frm=ALICE)), BOB)


def test_in_msg_exec_the_grantee_signs_not_the_granter():
    # Given BOB executing ALICE's send under a grant,
    tx = signed(exec_(BOB, send(frm=ALICE, to=CAROL)), key=BOB)
    # then BOB's signature is the one required and it passes.
    tx.validate_basic()
    with pytest.raises(WrongSigner):
        sign_tx(tx.body, ALICE)


def test_sign_tx_refuses_a_body_peers_would_not_decode():
    # Given a body built in Python with a memo over the limit (Meta limits are checked on decode),
    too_long = body(memo="x" * (MAX_MEMO_CHARS + 1))
    # when it is signed, then the node refuses rather than broadcast an undecodable tx.
    with pytest.raises(DecodeError, match="length <= 256"):
        sign_tx(too_long, ALICE)


# ---- decoding hostile bytes: every case raises DecodeError, with a message saying what is wrong


def _tree():
    return as_tree(signed())


def _mutated(change) -> bytes:
    tree = _tree()
    change(tree)
    return raw_msgpack(tree)


def _msg0(tree):
    return tree["body"]["messages"][0]


def _set(path_fn, key, value):
    def change(tree):
        path_fn(tree)[key] = value
    return change


def _nested_exec() -> bytes:
    # MsgExec refuses to be built around a MsgExec in Python, so nest the trees by hand.
    tree = as_tree(signed(exec_(BOB, send()), key=BOB))
    inner = tree["body"]["messages"][0]
    tree["body"]["messages"][0] = {**inner, "msgs": [dict(inner)]}
    return raw_msgpack(tree)


CANONICAL = encode(signed())
ADDR = ALICE.address


HOSTILE = {
    "empty": (b"", "truncated"),
    "garbage": (b"\xc1\xff\x00garbage", "malformed"),
    "truncated": (CANONICAL[:-5], "truncated"),
    "trailing-byte": (CANONICAL + b"\x00", "trailing"),
    "oversized": (b"\x90" * (MAX_TX_BYTES + 1), f"limit of {MAX_TX_BYTES} bytes"),
    "not-a-map": (encode([1, 2, 3]), "Expected `object`, got `array`"),
    "timeout-as-string": (
        _mutated(_set(lambda t: t["body"], "timeout_height", "100")),
        "Expected `int`, got `str` - at `$.body.timeout_height`",
    ),
    "timeout-zero": (_mutated(_set(lambda t: t["body"], "timeout_height", 0)), ">= 1"),
    "unknown-message-tag": (
        _mutated(_set(_msg0, "type", "bank/MsgBurn")),
        "Invalid value 'bank/MsgBurn' - at `$.body.messages[0].type`",
    ),
    "unknown-field-in-message": (
        _mutated(_set(_msg0, "denom", "ngonka")),
        "unknown field `denom` - at `$.body.messages[0]`",
    ),
    "unknown-field-in-tx": (_mutated(_set(lambda t: t, "fee", 1)), "unknown field `fee`"),
    "missing-field": (
        _mutated(lambda t: t["body"].pop("memo")),
        "missing required field `memo` - at `$.body`",
    ),
    "bad-address-checksum": (
        _mutated(_set(_msg0, "to_address", ADDR[:-1] + ("q" if ADDR[-1] != "q" else "p"))),
        "to_address: bad bech32 characters or checksum - at `$.body.messages[0]`",
    ),
    "uppercase-address": (
        _mutated(_set(_msg0, "from_address", ADDR.upper())),
        "from_address: addresses are lower case",
    ),
    "other-prefix-address": (_mutated(_set(_msg0, "to_address", "x" * len(ADDR))), "to_address"),
    "negative-amount": (_mutated(_set(_msg0, "amount", -1)), "Expected `int` >= 1"),
    "zero-amount": (_mutated(_set(_msg0, "amount", 0)), "Expected `int` >= 1"),
    "amount-over-int64": (
        _mutated(_set(_msg0, "amount", 2**63)),
        "Expected `int` <= 9223372036854775807 - at `$.body.messages[0].amount`",
    ),
    "amount-max-uint64": (_mutated(_set(_msg0, "amount", 2**64 - 1)), "<= 9223372036854775807"),
    "empty-messages": (
        _mutated(_set(lambda t: t["body"], "messages", [])),
        "length >= 1 - at `$.body.messages`",
    ),
    "too-many-messages": (
        _mutated(_set(lambda t: t["body"], "messages", [as_tree(send())] * (MAX_TX_MSGS + 1))),
        f"length <= {MAX_TX_MSGS}",
    ),
    "nested-msg-exec": (_nested_exec(), "MsgExec cannot contain MsgExec (msgs[0])"),
    "empty-msg-exec": (
        _mutated(_set(lambda t: t["body"], "messages", [as_tree(exec_(BOB)) | {"msgs": []}])),
        "length >= 1 - at `$.body.messages[0].msgs`",
    ),
    "short-pubkey": (_mutated(_set(lambda t: t, "pubkey", b"\x02" * 32)), "length >= 33"),
    "pubkey-not-a-point-encoding": (
        _mutated(_set(lambda t: t, "pubkey", b"\x05" + bytes(32))),
        "pubkey must be a 33-byte compressed secp256k1 key starting with 0x02 or 0x03, "
        "got 33 bytes starting with 05",
    ),
    "long-signature": (_mutated(_set(lambda t: t, "signature", bytes(65))), "length <= 64"),
    "memo-too-long": (
        _mutated(_set(lambda t: t["body"], "memo", "m" * (MAX_MEMO_CHARS + 1))),
        "length <= 256 - at `$.body.memo`",
    ),
    "bad-chain-id": (_mutated(_set(lambda t: t["body"], "chain_id", "a b")), "chain_id"),
    "wrong-body-tag": (
        _mutated(_set(lambda t: t["body"], "type", "gonka/Vote")),
        "Invalid value 'gonka/Vote' - at `$.body.type`",
    ),
}


@pytest.mark.parametrize("raw,expected", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_bytes_raise_decode_error_saying_what_is_wrong(raw, expected):
    # Given bytes that are not a valid tx, when decoded, then a DecodeError (and nothing else)
    # says what is wrong.
    with pytest.raises(DecodeError) as e:
        decode_tx(raw)
    assert type(e.value) is DecodeError
    assert expected in str(e.value)
    assert str(e.value).startswith("cannot decode Tx: ")


@pytest.mark.parametrize("value", ["a string", None, 42, [b"x"], bytearray(b"\xc1")])
def test_input_that_is_not_bytes_raises_decode_error(value):
    with pytest.raises(DecodeError, match="cannot decode Tx"):
        decode_tx(value)


def test_bytes_like_input_decodes_like_bytes():
    assert decode_tx(bytearray(CANONICAL)) == decode_tx(memoryview(CANONICAL)) == signed()


def _swap(raw: bytes, old: bytes, new: bytes) -> bytes:
    assert raw.count(old) == 1, old
    return raw.replace(old, new)


def _reordered_body() -> bytes:
    tree = _tree()
    b = tree["body"]
    tree["body"] = {k: b[k] for k in ["type", "chain_id", "memo", "messages", "timeout_height"]}
    return raw_msgpack(tree)


def _duplicate_key() -> bytes:
    # The body map grows a leading "memo": "x" before the real memo; a generic decoder keeps one.
    head = b"\xa4type\xacgonka/TxBody"
    return _swap(CANONICAL, b"\x85" + head, b"\x86\xa4memo\xa1x" + head)


NON_CANONICAL = {
    # timeout_height 100 as uint8 / uint16 / uint64 instead of a positive fixint.
    "int-as-uint8": _swap(CANONICAL, b"timeout_height\x64", b"timeout_height\xcc\x64"),
    "int-as-uint16": _swap(CANONICAL, b"timeout_height\x64", b"timeout_height\xcd\x00\x64"),
    "int-as-uint64": _swap(CANONICAL, b"timeout_height\x64",
                           b"timeout_height\xcf" + (100).to_bytes(8, "big")),
    "amount-as-uint64": _swap(CANONICAL, b"amount\xce\x3b\x9a\xca\x00",
                              b"amount\xcf" + (10**9).to_bytes(8, "big")),
    # "golden" as str8 instead of fixstr; the pubkey as bin16 instead of bin8.
    "str-as-str8": _swap(CANONICAL, b"\xa6golden", b"\xd9\x06golden"),
    "bin-as-bin16": _swap(CANONICAL, b"pubkey\xc4\x21", b"pubkey\xc5\x00\x21"),
    # The outer map header as map16 instead of fixmap.
    "map-as-map16": b"\xde\x00\x03" + CANONICAL[1:],
    "fields-reordered": _reordered_body(),
    "tag-left-out": raw_msgpack(_tree() | {"body": {
        k: v for k, v in _tree()["body"].items() if k != "type"}}),
    "duplicate-key": _duplicate_key(),
}


@pytest.mark.parametrize("raw", NON_CANONICAL.values(), ids=NON_CANONICAL.keys())
def test_valid_but_non_canonical_encodings_are_rejected(raw):
    # Given bytes that a plain MessagePack decoder reads as the very same signed tx,
    assert raw != CANONICAL
    # when decoded as a tx, then they are refused: a second encoding would be a second tx hash
    # for one signature.
    with pytest.raises(DecodeError, match="non-canonical encoding"):
        decode_tx(raw)
