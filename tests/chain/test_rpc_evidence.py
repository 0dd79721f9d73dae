"""GET /blocks/{h} shows the evidence a block carries (hex ids and hashes, a nil vote as null),
and a block without evidence shows none."""

from __future__ import annotations

import msgspec

from chain.consensus.blocks import make_block
from chain.rpc.schema import BlockView, block_view
from chain.types.codec import to_json
from tests.chain.sim.fixtures import KEYS, T0, first_state, key_at, other_block_id
from tests.chain.test_consensus_evidence import double_vote

STATE = first_state()


def test_the_block_view_lists_each_evidence():
    ev = double_vote(b=2)
    nil = double_vote(key=key_at(STATE.validators, 2), b=None)
    block = make_block(STATE, time_ns=T0, txs=(), evidence=[ev, nil], proposer=KEYS[0].id)
    view = block_view(block)
    first, second = view.evidence
    assert (first.hash, first.validator, first.height, first.round, first.type) == (
        ev.hash.hex(), ev.validator.hex(), 1, 0, "prevote")
    assert first.block_hashes == tuple(v.block_id.hash.hex() for v in (ev.vote_a, ev.vote_b))
    assert second.block_hashes == (None, other_block_id(1).hash.hex())
    # The JSON a client gets decodes to the same view
    assert msgspec.json.decode(to_json(view), type=BlockView) == view


def test_a_block_without_evidence_shows_none():
    block = make_block(STATE, time_ns=T0, txs=(), evidence=[], proposer=KEYS[0].id)
    assert block_view(block).evidence == ()
