"""The pure cores of p2p: frames, session keys and proofs, messages, seen-cache, back-off."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto.hashing import blake3_256
from chain.p2p import (
    BadAuthentication,
    BadMac,
    BadMessage,
    BlockRequest,
    FrameTooLarge,
    FrameTooShort,
    ProtocolViolation,
    SelfConnection,
    TxMsg,
    UnexpectedPeer,
    WrongChain,
    decode_message,
    encode_message,
)
from chain.p2p import handshake as hs
from chain.p2p.backoff import Backoff
from chain.p2p.frames import LENGTH_BYTES, MAC_BYTES, FrameOpener, FrameSealer
from chain.p2p.seen import SeenCache
from tests.chain.p2p_support import KEYS, every_message, info_for

KEY = bytes(range(32))
LIMIT = 1024


def _pair(limit: int = LIMIT) -> tuple[FrameSealer, FrameOpener]:
    return FrameSealer(KEY, limit), FrameOpener(KEY, limit)


# ---- frames ----------------------------------------------------------------------------------


def test_frames_round_trip_in_order_whatever_the_chunking():
    # Given three sealed frames delivered one byte at a time,
    sealer, opener = _pair()
    plaintexts = [b"", b"a", bytes(range(256)) * 4]
    wire = b"".join(sealer.seal(p) for p in plaintexts)
    out = []
    for i in range(len(wire)):
        opener.feed(wire[i:i + 1])
        while (frame := opener.next_frame()) is not None:
            out.append(frame)
    # then the plaintexts come out in order, and nothing is left over.
    assert out == plaintexts
    assert opener.buffered == 0


def test_an_oversized_length_prefix_is_refused_before_the_body_arrives():
    # Given only the 4-byte prefix of a frame above the limit,
    _, opener = _pair()
    opener.feed((LIMIT + MAC_BYTES + 1).to_bytes(LENGTH_BYTES, "big"))
    # then the opener refuses it at once, without waiting for a body.
    with pytest.raises(FrameTooLarge) as info:
        opener.next_frame()
    assert info.value.size == LIMIT + MAC_BYTES + 1
    # and stays refused: the connection is unusable.
    with pytest.raises(FrameTooLarge):
        opener.next_frame()


def test_a_frame_shorter_than_its_mac_is_refused():
    _, opener = _pair()
    opener.feed((MAC_BYTES - 1).to_bytes(LENGTH_BYTES, "big"))
    with pytest.raises(FrameTooShort):
        opener.next_frame()


@pytest.mark.parametrize("position", [LENGTH_BYTES, LENGTH_BYTES + 3, -1])
def test_a_flipped_body_byte_fails_authentication(position):
    # Given a frame with one ciphertext or tag byte flipped,
    sealer, opener = _pair()
    wire = bytearray(sealer.seal(b"hello, peer"))
    wire[position] ^= 0x01
    opener.feed(bytes(wire))
    # then it does not authenticate.
    with pytest.raises(BadMac):
        opener.next_frame()


def test_replayed_or_reordered_frames_fail_authentication():
    # Given two frames delivered in the wrong order (the counter nonce no longer matches),
    sealer, opener = _pair()
    first, second = sealer.seal(b"one"), sealer.seal(b"two")
    opener.feed(second + first)
    with pytest.raises(BadMac):
        opener.next_frame()
    # and a frame replayed after it was accepted.
    sealer, opener = _pair()
    frame = sealer.seal(b"one")
    opener.feed(frame + frame)
    assert opener.next_frame() == b"one"
    with pytest.raises(BadMac):
        opener.next_frame()


def test_the_sealer_refuses_a_message_the_peer_would_refuse():
    sealer, _ = _pair()
    with pytest.raises(ValueError, match="exceeds the frame limit"):
        sealer.seal(bytes(LIMIT + 1))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=4096), cuts=st.lists(st.integers(0, 4096), max_size=8))
def test_random_bytes_raise_only_protocol_violations(data, cuts):
    # Given arbitrary bytes in arbitrary chunks, the opener returns frames, asks for more, or
    # raises a ProtocolViolation: never anything else.
    _, opener = _pair()
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    try:
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            opener.feed(data[lo:hi])
            while opener.next_frame() is not None:
                pass
            assert opener.wanted() >= 1
    except ProtocolViolation:
        pass


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048))
def test_random_plaintexts_raise_only_bad_message(data):
    try:
        decode_message(data)
    except BadMessage:
        pass


# ---- session keys and proofs -----------------------------------------------------------------


def _session_pair():
    sa, sb = bytes([1]) * 32, bytes([2]) * 32
    pa, pb = hs.ephemeral_public_key(sa), hs.ephemeral_public_key(sb)
    return hs.derive_session(sa, pa, pb), hs.derive_session(sb, pb, pa), pa


def test_both_ends_derive_mirrored_keys_and_one_challenge():
    a, b, _ = _session_pair()
    assert a.send_key == b.receive_key and a.receive_key == b.send_key
    assert a.send_key != a.receive_key
    assert a.challenge == b.challenge


def test_a_reflected_or_low_order_ephemeral_key_is_refused():
    _, _, pa = _session_pair()
    with pytest.raises(BadAuthentication, match="echoed"):
        hs.derive_session(bytes([1]) * 32, pa, pa)
    with pytest.raises(BadAuthentication, match="low-order"):
        hs.derive_session(bytes([1]) * 32, pa, bytes(32))


def test_the_proof_names_the_signer_and_only_holds_for_its_session():
    # Given A's proof for this session's challenge,
    a, _, _ = _session_pair()
    proof = hs.auth_message(KEYS[0], a.challenge)
    # then it proves A's id for this challenge and nothing for another.
    assert hs.verify_auth(proof, a.challenge) == KEYS[0].id
    with pytest.raises(BadAuthentication):
        hs.verify_auth(proof, bytes(32))


def test_identity_checks_refuse_ourselves_and_the_unexpected():
    me, them, other = KEYS[0].id, KEYS[1].id, KEYS[2].id
    hs.check_identity(them, me, them)
    hs.check_identity(them, me, None)
    with pytest.raises(SelfConnection):
        hs.check_identity(me, me, None)
    with pytest.raises(UnexpectedPeer, match=other.hex()):
        hs.check_identity(them, me, other)


@pytest.mark.parametrize(
    ("theirs", "error", "words"),
    [
        (info_for(KEYS[1], chain_id="other-chain"), WrongChain, "chain id"),
        (info_for(KEYS[1], genesis_hash=bytes(32)), WrongChain, "genesis"),
        (msgspec.structs.replace(info_for(KEYS[1]), protocol_version=99), WrongChain, "version"),
        (info_for(KEYS[1], node_id=KEYS[2].id), UnexpectedPeer, "NodeInfo names"),
    ],
)
def test_node_info_of_another_network_or_another_id_is_refused(theirs, error, words):
    with pytest.raises(error, match=words):
        hs.check_node_info(info_for(KEYS[0]), theirs, KEYS[1].id)
    hs.check_node_info(info_for(KEYS[0]), info_for(KEYS[1]), KEYS[1].id)


# ---- messages --------------------------------------------------------------------------------


@pytest.mark.parametrize("msg", every_message(), ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_its_canonical_bytes(msg):
    raw = encode_message(msg)
    assert decode_message(raw) == msg


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (msgspec.msgpack.encode({"type": "p2p/Nope"}), "Invalid value 'p2p/Nope'"),
        (msgspec.msgpack.encode({"type": "p2p/Status", "height": 1, "base_height": 2}),
         "base_height 2 above height 1"),
        # height 1 written as a uint8 (0xcc 0x01) instead of a fixint:
        (b"\x83\xa4type\xaap2p/Status\xa6height\xcc\x01\xabbase_height\x00", "non-canonical"),
        (encode_message(BlockRequest(height=1)) + b"\x00", "trailing"),
    ],
    ids=["unknown-tag", "bad-status", "non-canonical", "trailing-bytes"],
)
def test_malformed_messages_are_bad_messages(raw, reason):
    with pytest.raises(BadMessage, match=reason):
        decode_message(raw)


def test_a_message_over_the_size_limit_is_a_bad_message():
    with pytest.raises(BadMessage, match="exceeds"):
        decode_message(encode_message(TxMsg(tx=bytes(100))), max_size=50)


# ---- seen-cache and back-off -----------------------------------------------------------------


def test_the_seen_cache_reports_duplicates_and_forgets_the_least_recent():
    # Given a cache of three,
    seen = SeenCache(3)
    keys = [blake3_256(bytes([i])) for i in range(4)]
    assert [seen.add(k) for k in keys[:3]] == [True, True, True]
    # when the oldest is touched again and a fourth arrives,
    assert seen.add(keys[0]) is False
    assert seen.add(keys[3]) is True
    # then the least recently used (keys[1]) is the one forgotten, and the size stays bounded.
    assert keys[1] not in seen and keys[0] in seen and len(seen) == 3


def test_back_off_grows_exponentially_with_bounded_jitter_and_a_cap():
    # Given a back-off of 1 s doubling up to 10 s with 20% jitter,
    backoff = Backoff(initial=1, maximum=10, jitter=0.2, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    # then delay n lies in [0.8, 1] x min(10, 2**n), never above the cap,
    for n, d in enumerate(delays):
        base = min(10, 2**n)
        assert 0.8 * base <= d <= base
    # the same seed gives the same delays, and a reset starts over.
    again = Backoff(initial=1, maximum=10, jitter=0.2, rng=random.Random(7))
    assert [again.next_delay() for _ in range(8)] == delays
    backoff.reset()
    assert backoff.next_delay() <= 1
