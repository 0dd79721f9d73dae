"""Peer addresses `id@host:port` and network settings: what is accepted, and the error for
what is not."""

from __future__ import annotations

import pytest

from chain.p2p import (
    InvalidPeerAddress,
    NetworkConfig,
    PeerAddress,
    parse_peer_address,
    parse_peer_list,
)

ID = bytes(range(20))
HEX = ID.hex()


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        (f"{HEX}@127.0.0.1:26656", "127.0.0.1", 26656),
        (f"{HEX.upper()}@node-1.example.org:1", "node-1.example.org", 1),
        (f"  {HEX}@[::1]:65535 ", "::1", 65535),
    ],
)
def test_valid_addresses_parse_and_print_back(text, host, port):
    # Given a well-formed address, when it is parsed,
    address = parse_peer_address(text)
    # then id, host and port are as written and str() gives the canonical form back.
    assert address == PeerAddress(id=ID, host=host, port=port)
    assert parse_peer_address(str(address)) == address
    assert PeerAddress.parse(text) == address


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("127.0.0.1:26656", "node id is missing"),
        (f"{HEX[:-2]}@127.0.0.1:26656", "40 hex characters"),
        (f"{HEX[:-1]}g@127.0.0.1:26656", "40 hex characters"),
        (f"{HEX}@127.0.0.1", "host:port"),
        (f"{HEX}@:26656", "host:port"),
        (f"{HEX}@bad host:26656", "bad host"),
        (f"{HEX}@::1:26656", "brackets"),
        (f"{HEX}@127.0.0.1:http", "must be a number"),
        (f"{HEX}@127.0.0.1:0", "1..65535"),
        (f"{HEX}@127.0.0.1:65536", "1..65535"),
        (f"{HEX}@127.0.0.1:-1", "must be a number"),
        (12, "expected a string"),
    ],
)
def test_malformed_addresses_name_the_bad_part(text, complaint):
    # Given a malformed address, when it is parsed, then the error says which part is wrong.
    with pytest.raises(InvalidPeerAddress, match=complaint) as info:
        parse_peer_address(text)
    assert info.value.text == text


def test_peer_lists_are_comma_separated_and_blank_entries_ignored():
    # Given a config value with two peers and stray commas, when it is parsed,
    peers = parse_peer_list(f"{HEX}@a:1, ,{HEX}@b:2,")
    # then both peers come out in order, and one bad entry fails the whole list.
    assert [(p.host, p.port) for p in peers] == [("a", 1), ("b", 2)]
    with pytest.raises(InvalidPeerAddress):
        parse_peer_list(f"{HEX}@a:1,nonsense")


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"dial_backoff_initial_s": 5.0, "dial_backoff_max_s": 1.0}, "dial_backoff_initial_s"),
        ({"dial_backoff_jitter": 1.0}, "jitter"),
        ({"send_queue_size": 0}, "send_queue_size"),
        ({"read_timeout_s": 0.0}, "read_timeout_s"),
        ({"listen_port": 70000}, "not a port"),
    ],
)
def test_network_settings_that_cannot_work_are_refused_at_construction(overrides, complaint):
    with pytest.raises(ValueError, match=complaint):
        NetworkConfig(**overrides)
