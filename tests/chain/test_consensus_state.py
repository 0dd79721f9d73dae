"""The pure Tendermint core driven event by event: locking, valid values, timeouts, proposer
duty, block validity, and the promise never to sign twice for one step."""

from __future__ import annotations

import msgspec
import pytest

from chain.consensus.blocks import block_id_of
from chain.consensus.events import (
    BroadcastProposal,
    BroadcastVote,
    BuildProposal,
    CommitBlock,
    JudgeProposal,
    PersistBeforeSend,
    ProposalJudged,
    ProposalReceived,
    ProposalTxsReady,
    ScheduleTimeout,
    Start,
    Step,
    TimeoutFired,
    VotesReceived,
)
from chain.consensus.state import ConsensusState
from chain.types.vote import VoteType
from tests.chain.sim.fixtures import (
    MS,
    SIM_PARAMS,
    T0,
    block_for,
    first_state,
    key_at,
    of_type,
    proposal,
    vote,
)


class Node:
    """One core at height 1 of a four-validator chain, as the proposer of round 3 (so that rounds
    0-2 are proposed by the three others), with helpers that play the rest of the network."""

    def __init__(self) -> None:
        self.chain = first_state()
        self.vset = self.chain.validators
        probe = ConsensusState(self.chain, SIM_PARAMS, None)
        self.proposers = [key_at(self.vset, self.vset.by_id(probe.proposer(r).id)[0])
                          for r in range(4)]
        self.me = self.proposers[3]
        self.others = self.proposers[:3]
        self.core = ConsensusState(self.chain, SIM_PARAMS, self.me)
        self.now = T0

    def feed(self, event) -> list:
        effects = self.core.handle(event)
        out = list(effects)
        # The application says yes to every block it is asked about.
        for judge in of_type(effects, JudgeProposal):
            out += self.feed(ProposalJudged(block_hash=judge.block.hash, valid=True,
                                            now_ns=self.now))
        return out

    def start(self) -> list:
        self.feed(Start(now_ns=self.now))
        return self.feed(TimeoutFired(height=1, round=0, step=Step.NEW_HEIGHT, now_ns=self.now))

    def block(self, round_: int, tag: bytes):
        return block_for(self.chain, self.proposers[round_], txs=(tag,))

    def propose(self, round_: int, block, pol_round: int = -1, by=None) -> list:
        block, block_id = block
        p = proposal(by or self.proposers[round_], 1, round_, block_id, pol_round)
        return self.feed(ProposalReceived(proposal=p, block=block, now_ns=self.now))

    def votes(self, type_: VoteType, round_: int, block_id, keys) -> list:
        vs = tuple(vote(self.vset, k, type_, 1, round_, block_id) for k in keys)
        return self.feed(VotesReceived(votes=vs, now_ns=self.now))

    def timeout(self, round_: int, step: Step) -> list:
        return self.feed(TimeoutFired(height=1, round=round_, step=step, now_ns=self.now))


def my_votes(effects, type_=None):
    return [e.vote for e in of_type(effects, BroadcastVote)
            if type_ is None or e.vote.type == type_]


def locked_on_b_in_round_0(node: Node):
    """Round 0: B proposed, +2/3 prevote it, the node locks and precommits it; the precommits are
    split, so round 0 ends without a decision and round 1 starts."""
    b = node.block(0, b"b=1")
    node.start()
    effects = node.propose(0, b)
    assert [v.block_id for v in my_votes(effects)] == [b[1]]
    effects = node.votes(VoteType.PREVOTE, 0, b[1], node.others[:2])
    assert [(v.type, v.block_id) for v in my_votes(effects)] == [(VoteType.PRECOMMIT, b[1])]
    assert node.core.locked_round == 0 and node.core.valid_round == 0
    node.votes(VoteType.PRECOMMIT, 0, None, node.others[:2])
    effects = node.timeout(0, Step.PRECOMMIT)
    assert node.core.round == 1
    return b


def test_a_validator_locked_on_a_block_prevotes_nil_for_another_fresh_block():
    node = Node()
    locked_on_b_in_round_0(node)
    # When round 1's proposer proposes a new block C,
    c = node.block(1, b"c=1")
    effects = node.propose(1, c)
    # then the locked node prevotes nil, not C.
    assert [(v.round, v.block_id) for v in my_votes(effects)] == [(1, None)]


def test_a_reproposal_without_its_proof_of_lock_gets_no_prevote_until_the_timeout():
    node = Node()
    locked_on_b_in_round_0(node)
    # Given C proposed in round 1 claiming a proof of lock from round 0 that nobody holds,
    c = node.block(1, b"c=1")
    effects = node.propose(1, c, pol_round=0)
    # then the node waits: no prevote at all,
    assert my_votes(effects) == []
    # and when the propose timeout fires it prevotes nil.
    effects = node.timeout(1, Step.PROPOSE)
    assert [(v.round, v.block_id) for v in my_votes(effects)] == [(1, None)]


def test_a_newer_proof_of_lock_unlocks_a_validator():
    node = Node()
    b = locked_on_b_in_round_0(node)
    c = node.block(1, b"c=1")
    node.propose(1, c)  # prevote nil (locked on B)
    node.votes(VoteType.PRECOMMIT, 1, None, node.others)
    node.timeout(1, Step.PRECOMMIT)
    assert node.core.round == 2
    # Given +2/3 prevoted C in round 1 (heard late, in round 2),
    node.votes(VoteType.PREVOTE, 1, c[1], node.others)
    # when round 2's proposer re-proposes C with that round as its proof of lock,
    effects = node.propose(2, c, pol_round=1)
    # then the node, locked in round 0 < 1, prevotes C.
    assert [(v.round, v.block_id) for v in my_votes(effects)] == [(2, c[1])]
    assert node.core.locked_round == 0 and b[1] != c[1]


def test_an_older_proof_of_lock_does_not_unlock():
    node = Node()
    node.start()
    # Given +2/3 prevoted C in round 0 (the node missed the proposal and prevoted nil),
    c = node.block(0, b"c=1")
    node.timeout(0, Step.PROPOSE)
    node.votes(VoteType.PREVOTE, 0, c[1], node.others)
    node.votes(VoteType.PRECOMMIT, 0, None, node.others)
    node.timeout(0, Step.PRECOMMIT)
    # and the node then locked on B in round 1,
    b = node.block(1, b"b=1")
    node.propose(1, b)
    node.votes(VoteType.PREVOTE, 1, b[1], node.others[:2])
    assert (node.core.locked_round, node.core.round) == (1, 1)
    node.votes(VoteType.PRECOMMIT, 1, None, node.others)
    node.timeout(1, Step.PRECOMMIT)
    # when round 2 re-proposes C with its proof of lock from round 0 (older than the lock),
    effects = node.propose(2, c, pol_round=0)
    # then the node stays with B: it prevotes nil.
    assert [(v.round, v.block_id) for v in my_votes(effects)] == [(2, None)]


def test_the_proposer_reproposes_its_valid_block_with_its_round():
    node = Node()
    b = locked_on_b_in_round_0(node)
    for r in (1, 2):
        node.timeout(r, Step.PROPOSE)
        node.votes(VoteType.PRECOMMIT, r, None, node.others)
        effects = node.timeout(r, Step.PRECOMMIT)
    # In round 3 the node itself proposes: not a new block, but B with pol_round 0.
    assert node.core.round == 3
    proposals = of_type(effects, BroadcastProposal)
    assert of_type(effects, BuildProposal) == []
    assert [(p.proposal.block_id, p.proposal.pol_round) for p in proposals] == [(b[1], 0)]


def test_decides_on_two_thirds_precommits_in_any_round_of_a_known_block():
    node = Node()
    b = node.block(0, b"b=1")
    node.start()
    node.propose(0, b)
    node.timeout(0, Step.PROPOSE)
    # The node moved on (round 1) but +2/3 precommitted B in round 0: the height is decided.
    node.votes(VoteType.PRECOMMIT, 0, None, node.others[:1])
    node.votes(VoteType.PRECOMMIT, 1, None, node.others[:2])
    effects = node.votes(VoteType.PRECOMMIT, 0, b[1], node.others)
    commits = of_type(effects, CommitBlock)
    assert len(commits) == 1 and commits[0].block.hash == b[1].hash
    assert commits[0].commit.round == 0 and node.core.step == Step.COMMIT


def test_more_than_a_third_in_a_later_round_makes_the_node_jump_there():
    node = Node()
    node.start()
    # One validator in round 5 is not enough (it may be Byzantine); two (20 of 40 > 1/3) are.
    node.votes(VoteType.PREVOTE, 5, None, node.others[:1])
    assert node.core.round == 0
    effects = node.votes(VoteType.PREVOTE, 5, None, node.others[1:2])
    assert node.core.round == 5 and node.core.step == Step.PROPOSE
    timeouts = of_type(effects, ScheduleTimeout)
    assert timeouts[-1].duration_ms == SIM_PARAMS.timeout_propose_ms \
        + 5 * SIM_PARAMS.timeout_propose_delta_ms


def test_timeouts_grow_with_the_round():
    node = Node()
    durations = []
    node.start()
    for r in range(3):
        node.timeout(r, Step.PROPOSE)
        effects = node.votes(VoteType.PREVOTE, r, None, node.others[:2])
        durations.append([t.duration_ms for t in of_type(effects, ScheduleTimeout)])
        node.votes(VoteType.PRECOMMIT, r, None, node.others)
        node.timeout(r, Step.PRECOMMIT)
    p = SIM_PARAMS
    assert durations == [[p.timeout_prevote_ms + r * p.timeout_prevote_delta_ms]
                         for r in range(3)]


def test_a_proposal_from_the_wrong_proposer_is_ignored():
    node = Node()
    node.start()
    b = node.block(0, b"b=1")
    effects = node.propose(0, b, by=node.proposers[1])
    assert of_type(effects, JudgeProposal) == [] and my_votes(effects) == []


def _tampered(node: Node, **header):
    block, _ = node.block(0, b"b=1")
    bad = msgspec.structs.replace(block, header=msgspec.structs.replace(block.header, **header))
    return bad, block_id_of(bad)


@pytest.mark.parametrize("header", [
    {"app_hash": bytes(32)}, {"validators_hash": bytes(32)}, {"next_validators_hash": bytes(32)},
    {"last_results_hash": bytes(32)}, {"time_ns": T0 - 1}, {"chain_id": "other"},
], ids=lambda h: next(iter(h)))
def test_a_block_that_does_not_follow_the_chain_is_prevoted_nil(header):
    node = Node()
    node.start()
    effects = node.propose(0, _tampered(node, **header))
    # The app is not even asked; the node prevotes nil.
    assert of_type(effects, JudgeProposal) == []
    assert [v.block_id for v in my_votes(effects)] == [None]


def test_a_block_the_application_rejects_is_prevoted_nil():
    node = Node()
    node.start()
    block, block_id = node.block(0, b"b=1")
    p = proposal(node.proposers[0], 1, 0, block_id)
    effects = node.core.handle(ProposalReceived(proposal=p, block=block, now_ns=node.now))
    assert [j.block.hash for j in of_type(effects, JudgeProposal)] == [block_id.hash]
    effects = node.core.handle(ProposalJudged(block_hash=block_id.hash, valid=False, now_ns=T0))
    assert [v.block_id for v in my_votes(effects)] == [None]


def test_the_proposer_asks_the_app_then_signs_persists_and_sends_its_block():
    node = Node()
    core = ConsensusState(node.chain, SIM_PARAMS, node.proposers[0])
    core.handle(Start(now_ns=T0))
    effects = core.handle(TimeoutFired(height=1, round=0, step=Step.NEW_HEIGHT, now_ns=T0 + MS))
    build = of_type(effects, BuildProposal)[0]
    assert (build.height, build.round, build.time_ns) == (1, 0, T0 + MS)
    effects = core.handle(ProposalTxsReady(height=1, round=0, txs=(b"a=1",), now_ns=T0 + MS))
    kinds = [type(e) for e in effects]
    # The signed proposal is persisted before it is sent, then judged like anyone's.
    assert kinds[:3] == [PersistBeforeSend, BroadcastProposal, JudgeProposal]
    sent = effects[1]
    assert sent.block.txs == (b"a=1",) and sent.block.header.proposer == node.proposers[0].id
    assert effects[0].record.signature == sent.proposal.signature


def test_every_own_vote_is_preceded_by_persist_before_send():
    node = Node()
    node.start()
    effects = node.propose(0, node.block(0, b"b=1"))
    effects += node.votes(VoteType.PREVOTE, 0, effects[-1].vote.block_id, node.others[:2])
    sends = [i for i, e in enumerate(effects) if isinstance(e, BroadcastVote)]
    assert len(sends) == 2
    for i in sends:
        assert isinstance(effects[i - 1], PersistBeforeSend)
        assert effects[i - 1].record.signature == effects[i].vote.signature


def test_a_follower_without_a_key_follows_but_never_signs():
    node = Node()
    follower = ConsensusState(node.chain, SIM_PARAMS, None)
    follower.handle(Start(now_ns=T0))
    follower.handle(TimeoutFired(height=1, round=0, step=Step.NEW_HEIGHT, now_ns=T0))
    block, block_id = node.block(0, b"b=1")
    effects = follower.handle(ProposalReceived(
        proposal=proposal(node.proposers[0], 1, 0, block_id), block=block, now_ns=T0))
    effects += follower.handle(ProposalJudged(block_hash=block_id.hash, valid=True, now_ns=T0))
    assert my_votes(effects) == [] and follower.step == Step.PREVOTE
    precommits = tuple(vote(node.vset, k, VoteType.PRECOMMIT, 1, 0, block_id)
                       for k in node.others)
    effects = follower.handle(VotesReceived(votes=precommits, now_ns=T0))
    assert len(of_type(effects, CommitBlock)) == 1 and not follower.is_validator
