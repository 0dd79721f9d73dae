"""The write-ahead log (records, rotation, torn tails, corruption), the sign state (refusing a
conflicting signature after a restart), and rebuilding a core by replaying its WAL."""

from __future__ import annotations

import random

import pytest

from chain.consensus.events import (
    BroadcastVote,
    EndHeight,
    Start,
    Step,
    TimeoutFired,
)
from chain.consensus.sign_state import (
    CorruptSignState,
    DoubleSignRefused,
    SignRecord,
    SignStateFile,
    SignStep,
    check_sign,
)
from chain.consensus.state import ConsensusState
from chain.consensus.storage import DiskFiles, MemoryFiles
from chain.consensus.wal import HEADER, WAL, WalCorrupt, frame, read_wal, replay
from chain.types.vote import VoteType, vote_sign_bytes
from tests.chain.sim.fixtures import (
    CHAIN_ID,
    SIM_PARAMS,
    T0,
    first_state,
    key_at,
    of_type,
    other_block_id,
    vote,
)
from tests.chain.test_consensus_state import Node, locked_on_b_in_round_0

EVENTS = [Start(now_ns=T0), TimeoutFired(height=1, round=0, step=Step.NEW_HEIGHT, now_ns=T0 + 1),
          TimeoutFired(height=1, round=0, step=Step.PROPOSE, now_ns=T0 + 2)]


@pytest.fixture
def wal_path(tmp_path):
    return str(tmp_path / "cs.wal")


def _logged(wal_path: str) -> bytearray:
    """EVENTS written and synced to a fresh WAL; the file's bytes."""
    wal = WAL(wal_path)
    for e in EVENTS:
        wal.write(e)
    wal.flush_sync()
    return bytearray(open(wal_path, "rb").read())


def test_events_come_back_in_order_after_the_last_end_height(wal_path):
    wal = WAL(wal_path)
    wal.write(EVENTS[0])
    wal.end_height(4)
    for e in EVENTS:
        wal.write(e)
    wal.flush_sync()
    contents = read_wal(wal_path)
    assert contents.end_height == 4 and contents.events == tuple(EVENTS)
    assert contents.truncated == 0
    assert list(replay(wal_path)) == EVENTS


def test_rotation_carries_events_over_to_the_next_height(wal_path):
    wal = WAL(wal_path)
    wal.write_sync(EVENTS[0])
    wal.end_height(7, carry=EVENTS[1:2])
    contents = read_wal(wal_path)
    assert (contents.end_height, contents.events) == (7, (EVENTS[1],))


@pytest.mark.parametrize("cut", [1, HEADER.size - 1, HEADER.size + 1])
def test_a_torn_last_record_is_cut_off_and_writing_goes_on(wal_path, cut):
    # Given a WAL whose last record was cut short by a crash,
    whole = bytes(_logged(wal_path))
    last = len(frame(EVENTS[-1]))
    with open(wal_path, "wb") as f:
        f.write(whole[:len(whole) - last + cut])
    # when it is replayed, then the complete records come back and the tail is gone from disk,
    contents = read_wal(wal_path)
    assert contents.events == tuple(EVENTS[:-1]) and contents.truncated == cut
    assert open(wal_path, "rb").read() == whole[:len(whole) - last]
    # and a node that appends afterwards leaves a clean log.
    wal2 = WAL(wal_path)
    wal2.write_sync(EVENTS[-1])
    assert read_wal(wal_path).events == tuple(EVENTS)


def test_garbage_in_place_of_the_last_record_is_a_torn_tail(wal_path):
    raw = _logged(wal_path)
    raw[-1] ^= 0xFF
    open(wal_path, "wb").write(bytes(raw))
    assert read_wal(wal_path).events == tuple(EVENTS[:-1])


def test_corruption_before_the_tail_names_its_offset_and_changes_nothing(wal_path):
    raw = _logged(wal_path)
    second = len(frame(EVENTS[0]))
    raw[second + HEADER.size] ^= 0xFF  # first payload byte of the second record
    open(wal_path, "wb").write(bytes(raw))
    with pytest.raises(WalCorrupt) as e:
        read_wal(wal_path)
    assert e.value.offset == second and "checksum" in str(e.value)
    assert open(wal_path, "rb").read() == bytes(raw)


def test_a_missing_wal_reads_as_empty(wal_path):
    assert read_wal(wal_path).events == () and read_wal(wal_path).end_height is None


def test_the_simulated_disk_loses_what_was_not_synced():
    files = MemoryFiles()
    wal = WAL("w", files)
    wal.write_sync(EVENTS[0])
    wal.write(EVENTS[1])
    files.crash()
    assert read_wal("w", files).events == (EVENTS[0],)
    # With a random generator, a prefix of the unsynced bytes may survive: a torn tail.
    wal.write(EVENTS[1])
    wal.write(EVENTS[2])
    files.crash(random.Random(3))
    assert read_wal("w", files).events[0] == EVENTS[0]


def test_end_height_marker_is_a_wal_record_not_a_core_event(wal_path):
    WAL(wal_path).end_height(3)
    assert open(wal_path, "rb").read() == frame(EndHeight(height=3))


# -- the sign state ----------------------------------------------------------------------------

def _record(height=5, round_=1, step=SignStep.PREVOTE, time_ns=T0, block=None):
    vset = first_state().validators
    v = vote(vset, key_at(vset, 0), VoteType.PREVOTE if step == SignStep.PREVOTE
             else VoteType.PRECOMMIT, height, round_, block, time_ns=time_ns)
    return SignRecord(height=height, round=round_, step=step,
                      sign_bytes=vote_sign_bytes(CHAIN_ID, v), signature=v.signature)


def test_check_sign_orders_height_round_step():
    last = _record()
    assert check_sign(None, 5, 1, SignStep.PREVOTE, b"x") is None
    assert check_sign(last, 5, 1, SignStep.PRECOMMIT, b"x") is None  # later step
    assert check_sign(last, 5, 2, SignStep.PROPOSAL, b"x") is None  # later round
    with pytest.raises(DoubleSignRefused, match="later step"):
        check_sign(last, 5, 1, SignStep.PROPOSAL, b"x")
    with pytest.raises(DoubleSignRefused, match="later step"):
        check_sign(last, 4, 9, SignStep.PRECOMMIT, b"x")


def test_check_sign_repeats_the_same_message_even_with_another_timestamp():
    last = _record(time_ns=T0)
    assert check_sign(last, 5, 1, SignStep.PREVOTE, last.sign_bytes) is last
    later = _record(time_ns=T0 + 99)
    assert check_sign(last, 5, 1, SignStep.PREVOTE, later.sign_bytes) is last
    conflicting = _record(block=other_block_id(3))
    with pytest.raises(DoubleSignRefused, match="different message"):
        check_sign(last, 5, 1, SignStep.PREVOTE, conflicting.sign_bytes)


def test_the_sign_state_file_round_trips_and_refuses_to_guess(tmp_path):
    path = str(tmp_path / "sign_state")
    state = SignStateFile(path)
    assert state.load() is None
    record = _record()
    state.save(record)
    assert SignStateFile(path, DiskFiles()).load() == record
    raw = bytearray(open(path, "rb").read())
    raw[3] ^= 1
    open(path, "wb").write(bytes(raw))
    with pytest.raises(CorruptSignState):
        state.load()


def test_after_a_restart_the_core_refuses_a_conflicting_vote_and_repeats_the_same_one(tmp_path):
    # Given a validator that prevoted B at height 1 round 0, with its sign state on disk,
    before = Node()
    before.start()
    b = before.block(0, b"b=1")
    effects = before.propose(0, b)
    (sent,) = [e.vote for e in of_type(effects, BroadcastVote)]
    file = SignStateFile(str(tmp_path / "sign_state"))
    file.save(before.core.last_signed)

    # when it restarts without its WAL and is shown another block C for the same round,
    after = Node()
    after.core.restore_sign_state(file.load())
    after.now = T0 + 5_000_000
    after.start()
    effects = after.propose(0, after.block(0, b"c=2"))
    # then it signs nothing (it moves on to the prevote step without a vote),
    assert of_type(effects, BroadcastVote) == [] and after.core.step == Step.PREVOTE

    # and when, restarted again, it is shown B again, it sends the very vote it signed before.
    again = Node()
    again.core.restore_sign_state(file.load())
    again.now = T0 + 9_000_000
    again.start()
    effects = again.propose(0, b)
    assert [e.vote for e in of_type(effects, BroadcastVote)] == [sent]


# -- replay ------------------------------------------------------------------------------------

def _logging(node: Node, wal: WAL, sent: list) -> None:
    """Write every event the node's core handles to `wal`, as the driver does; keep its votes."""
    handle = node.core.handle

    def logged(event):
        wal.write(event)
        effects = handle(event)
        sent.extend(e.vote for e in of_type(effects, BroadcastVote))
        return effects

    node.core.handle = logged  # type: ignore[method-assign]


def test_replaying_the_wal_into_a_fresh_core_rebuilds_the_same_state_locks_included(wal_path):
    # Given a core that went through a locked round 0 and part of round 1, every event logged,
    node, wal, sent = Node(), WAL(wal_path), []
    _logging(node, wal, sent)
    locked_on_b_in_round_0(node)
    node.votes(VoteType.PREVOTE, 1, None, node.others[:1])
    wal.flush_sync()
    assert node.core.locked_round == 0
    # when a fresh core is fed the WAL,
    fresh = ConsensusState(node.chain, SIM_PARAMS, node.me)
    replayed = []
    for event in replay(wal_path):
        replayed += [e.vote for e in of_type(fresh.handle(event), BroadcastVote)]
    # then it is the same core: round, step, lock, valid block, proposals, votes, sign state,
    assert fresh.round_state() == node.core.round_state()
    assert fresh.round_state().locked_block_id is not None
    # and it re-derived exactly the votes that were sent (prevote and precommit for B).
    assert replayed == sent and [v.type for v in sent] == [VoteType.PREVOTE, VoteType.PRECOMMIT]
