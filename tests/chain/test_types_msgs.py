"""Transaction messages: the registry, round trips through the tagged union, signers, and the
stateless rules of bank and authz messages, both when decoded and when built in Python."""

from __future__ import annotations

import typing

import msgspec
import pytest

from chain.crypto.errors import InvalidAddress
from chain.types import (
    DENOM,
    MAX_AMOUNT,
    MSG_TYPES,
    NGONKA_PER_GONKA,
    DecodeError,
    Msg,
    MsgExec,
    MsgGrant,
    MsgRevoke,
    MsgSend,
    decode,
    encode,
)
from chain.types.msgs import MESSAGE_TYPES, msg_tag
from tests.chain.builders import ALICE, BOB, CAROL, as_tree, exec_, grant, raw_msgpack, send

EVERY_MESSAGE = [
    send(),
    send(amount=1),
    send(amount=MAX_AMOUNT),
    grant(),
    grant(msg_types=("bank/MsgSend", "authz/MsgGrant", "authz/MsgRevoke"), expiration_height=10),
    MsgRevoke(granter=ALICE.address, grantee=BOB.address, msg_types=("bank/MsgSend",)),
    exec_(BOB, send(), grant(ALICE, CAROL)),
]


def test_the_registry_lists_every_message_once_with_its_tag():
    # Given the registry, then the union, the tag table and the tuple agree.
    assert set(typing.get_args(Msg)) == set(MESSAGE_TYPES)
    assert {msg_tag(t): t for t in MESSAGE_TYPES} == dict(MSG_TYPES)
    # (a subset: other modules add their messages to the same registry)
    assert {"bank/MsgSend", "authz/MsgGrant", "authz/MsgRevoke", "authz/MsgExec"} <= set(MSG_TYPES)


def test_the_native_denom():
    assert DENOM == "ngonka" and NGONKA_PER_GONKA == 10**9
    assert MAX_AMOUNT + MAX_AMOUNT < 2**64  # two amounts always add up inside uint64


@pytest.mark.parametrize("msg", EVERY_MESSAGE, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_the_union(msg):
    # Given a message, when encoded and decoded as the union `Msg`,
    raw = encode(msg)
    back = decode(raw, Msg)
    # then the same type and value come back, and the tag leads the encoding.
    assert type(back) is type(msg) and back == msg
    assert encode(back) == raw
    assert next(iter(msgspec.msgpack.decode(raw).items())) == ("type", msg_tag(type(msg)))


@pytest.mark.parametrize(
    "msg,signers",
    [
        (send(frm=ALICE, to=BOB), (ALICE.address,)),
        (grant(ALICE, BOB), (ALICE.address,)),
        (MsgRevoke(granter=CAROL.address, grantee=BOB.address, msg_types=("bank/MsgSend",)),
         (CAROL.address,)),
        (exec_(BOB, send(frm=ALICE)), (BOB.address,)),
    ],
    ids=["send", "grant", "revoke", "exec"],
)
def test_each_message_names_who_must_sign_it(msg, signers):
    assert msg.signers == signers


BAD_ADDRESSES = {
    "checksum": ALICE.address[:-1] + ("q" if ALICE.address[-1] != "q" else "p"),
    "uppercase": ALICE.address.upper(),
    "mixed-case": ALICE.address[:10] + ALICE.address[10:].upper(),
    "other-prefix": "cosmos1" + ALICE.address[6:],
    "empty": "",
}


@pytest.mark.parametrize("bad", BAD_ADDRESSES.values(), ids=BAD_ADDRESSES.keys())
def test_building_a_message_with_a_bad_address_raises_invalid_address(bad):
    with pytest.raises(InvalidAddress, match="to_address"):
        MsgSend(from_address=ALICE.address, to_address=bad, amount=1)
    with pytest.raises(InvalidAddress, match="grantee"):
        MsgExec(grantee=bad, msgs=(send(),))


@pytest.mark.parametrize("bad", BAD_ADDRESSES.values(), ids=BAD_ADDRESSES.keys())
def test_decoding_a_message_with_a_bad_address_raises_decode_error(bad):
    raw = raw_msgpack(as_tree(send()) | {"to_address": bad})
    with pytest.raises(DecodeError, match="to_address"):
        decode(raw, Msg)


def _decode_grant_with(**fields) -> MsgGrant:
    return decode(raw_msgpack(as_tree(grant()) | fields), Msg)


@pytest.mark.parametrize(
    "fields,reason",
    [
        ({"grantee": ALICE.address}, "granter and grantee are the same account"),
        ({"msg_types": []}, "length >= 1 - at `$.msg_types`"),
        ({"msg_types": ["bank/MsgBurn"]}, "unknown message type 'bank/MsgBurn'"),
        ({"msg_types": ["bank/MsgSend", "bank/MsgSend"]}, "appears twice"),
        ({"msg_types": ["authz/MsgExec"]}, "authz/MsgExec cannot be granted"),
        ({"msg_types": [""]}, "length >= 1"),
        ({"expiration_height": 0}, ">= 1 - at `$.expiration_height`"),
        ({"expiration_height": "soon"}, "Expected `int | null`, got `str`"),
    ],
)
def test_grant_rules_are_enforced_on_decode(fields, reason):
    with pytest.raises(DecodeError) as e:
        _decode_grant_with(**fields)
    assert reason in str(e.value)


def test_grant_rules_are_enforced_when_built_in_python():
    with pytest.raises(ValueError, match="same account"):
        grant(ALICE, ALICE)
    with pytest.raises(ValueError, match="unknown message type"):
        grant(msg_types=("bank/MsgBurn",))
    with pytest.raises(ValueError, match="appears twice"):
        MsgRevoke(granter=ALICE.address, grantee=BOB.address,
                  msg_types=("bank/MsgSend", "bank/MsgSend"))


def test_msg_exec_cannot_be_nested_or_empty_when_built_in_python():
    with pytest.raises(ValueError, match="MsgExec cannot contain MsgExec"):
        MsgExec(grantee=BOB.address, msgs=(send(), exec_(BOB)))
    with pytest.raises(ValueError, match="no messages"):
        MsgExec(grantee=BOB.address, msgs=())


def test_absurdly_deep_msg_exec_nesting_is_a_decode_error_not_a_crash():
    # Given a MsgExec nested 10,000 deep (under 1 MiB of bytes),
    raw = encode(send())
    head = encode(exec_(BOB))[: -len(encode(send())) - 1] + b"\x91"
    raw = head * 10_000 + raw
    assert len(raw) < 1 << 20
    # when decoded, then it is a DecodeError (the recursion limit), not a RecursionError.
    with pytest.raises(DecodeError, match="nested too deeply"):
        decode(raw, Msg)
