"""The Tendermint consensus state machine (Buchman, Kwon, Milosevic 2018), pure.

`ConsensusState.handle(event)` applies one event and returns the effects it asks for. It does no
I/O, reads no clock (every event carries `now_ns`) and uses no randomness, so a node's behaviour
is a function of the events it was fed: the WAL replays them, the simulation runs four of these in
one process.

The algorithm is the paper's, as upon-rules evaluated after every event until none fires:
  * a round starts with a proposal: the round's proposer re-proposes its valid block (with the
    round it became valid in as `pol_round`) or asks the application for a new one;
  * prevote the proposal if valid(v) and not locked on another block (for a re-proposal: unless
    locked in a round after its `pol_round`, given +2/3 prevotes for it in that round), else nil;
  * +2/3 prevotes for the round's proposal: lock on it and precommit it (once per round), and
    make it the valid block; +2/3 prevotes for nil: precommit nil;
  * +2/3 of any prevotes / any precommits start the prevote / precommit timeouts, which end in a
    nil precommit / the next round; timeouts grow by a delta per round;
  * +2/3 precommits for a known valid block, in any round, decide the height;
  * votes from more than 1/3 of the power in a later round make the node jump to that round.
valid(v) is `blocks.validate_block`, the evidence pool's check, and the application's
`process_proposal` verdict (asked through JudgeProposal, answered by ProposalJudged).

Own proposals and votes are signed here (ed25519 is deterministic), each through the sign-state
rule (`sign_state.check_sign`): this core never signs two different messages for one height,
round and step, and a signed message is always preceded by PersistBeforeSend.
"""

from __future__ import annotations

import msgspec

from chain.app.errors import AppHashMismatch
from chain.consensus.blocks import (
    BlockRejected,
    block_id_of,
    fit_block,
    proposal_time,
    tx_budget,
    validate_block,
)
from chain.consensus.chain_state import ChainState
from chain.consensus.events import (
    BlockCommitted,
    BroadcastProposal,
    BroadcastVote,
    BuildProposal,
    CommitBlock,
    CommitReceived,
    Effect,
    Event,
    EvidenceReceived,
    JudgeProposal,
    PersistBeforeSend,
    ProposalJudged,
    ProposalReceived,
    ProposalTxsReady,
    RecordEvidence,
    RoundState,
    ScheduleTimeout,
    Start,
    Step,
    TimeoutFired,
    VotesReceived,
)
from chain.consensus.evidence import EvidencePool
from chain.consensus.sign_state import SignRecord, SignStep, sign_once
from chain.consensus.validators import Validator
from chain.consensus.vote_set import ConflictingVote, InvalidCommit, VoteSet, verify_commit
from chain.crypto.ed25519 import PrivateKey
from chain.types.block import Block
from chain.types.block_id import BlockID
from chain.types.commit import Commit
from chain.types.evidence import DuplicateVoteEvidence, InvalidEvidence
from chain.types.genesis import ConsensusParams
from chain.types.vote import (
    Proposal,
    Vote,
    VoteType,
    proposal_sign_bytes,
    verify_proposal,
    vote_sign_bytes,
)

# Proposals and votes further ahead than this many rounds are ignored: it bounds the vote sets a
# Byzantine validator can make us allocate, and is far beyond any round a live network reaches.
ROUND_WINDOW = 1000

_SIGN_STEP = {VoteType.PREVOTE: SignStep.PREVOTE, VoteType.PRECOMMIT: SignStep.PRECOMMIT}


class ConsensusState:
    """One node's view of consensus at the current height; `handle` is the only way in."""

    def __init__(self, chain: ChainState, params: ConsensusParams, priv_key: PrivateKey | None,
                 *, evidence: EvidencePool | None = None,
                 last_signed: SignRecord | None = None) -> None:
        """`priv_key` None makes a follower that never signs. `last_signed` is the sign state
        loaded from disk; `evidence` a pool rebuilt from the block store (or a fresh one)."""
        self.chain_id = chain.chain_id
        self.params = params
        self.key = priv_key
        self.evidence = evidence or EvidencePool(chain.chain_id)
        self.last_signed = last_signed
        self._out: list[Effect] = []
        self._now = 0
        self._handlers = {
            Start: self._on_start, ProposalReceived: self._on_proposal,
            VotesReceived: self._on_votes, EvidenceReceived: self._on_evidence,
            TimeoutFired: self._on_timeout, ProposalTxsReady: self._on_txs_ready,
            ProposalJudged: self._on_judged, CommitReceived: self._on_commit_received,
            BlockCommitted: self._on_block_committed,
        }
        self._enter_height(chain)

    # -- public ------------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Effect]:
        """Apply `event`; the effects, in the order they must be carried out."""
        self._now = event.now_ns
        self._handlers[type(event)](event)
        self._run_rules()
        out, self._out = self._out, []
        return out

    def news(self, event: Event) -> Event | None:
        """`event` without what this core already holds (votes counted, a round's proposal
        accepted), or None if nothing is left: the driver logs only news, so that peers
        re-sending their messages do not grow the WAL."""
        if isinstance(event, VotesReceived):
            fresh = tuple(v for v in event.votes if v.height == self.height and not (
                (v.round, v.type) in self._votes and self._votes[(v.round, v.type)].holds(v)))
            if not fresh:
                return None
            return event if len(fresh) == len(event.votes) else VotesReceived(
                votes=fresh, now_ns=event.now_ns)
        if isinstance(event, ProposalReceived):
            p = event.proposal
            if p.height != self.height or p.round in self._proposals:
                return None
        return event

    def restore_sign_state(self, record: SignRecord | None) -> None:
        """Adopt the durable sign state after a WAL replay, if it is ahead of what the replay
        re-signed (the WAL may have lost events the sign state kept)."""
        if record is not None and (self.last_signed is None or record.hrs > self.last_signed.hrs):
            self.last_signed = record

    @property
    def height(self) -> int:
        return self.chain.height

    @property
    def is_validator(self) -> bool:
        return self._my_index is not None

    def proposer(self, round_: int) -> Validator:
        """The proposer of `round_` at the current height."""
        found = self._proposers.get(round_)
        if found is None:
            found = self._proposers[round_] = self.chain.validators.proposer_at(round_)
        return found

    def round_state(self) -> RoundState:
        votes = sorted((v for vs in self._votes.values() for v in vs.all_votes()),
                       key=lambda v: (v.round, v.type, v.validator_index, v.signature))
        return RoundState(
            height=self.height, round=self.round, step=self.step,
            locked_round=self.locked_round, locked_block_id=self._locked_id,
            valid_round=self.valid_round,
            valid_block_id=None if self.valid_block is None else block_id_of(self.valid_block),
            proposals=tuple(self._proposals[r][0] for r in sorted(self._proposals)),
            votes=tuple(votes), last_signed=self.last_signed,
        )

    def pending_requests(self) -> list[Effect]:
        """The questions to the application still unanswered (BuildProposal, JudgeProposal):
        after a WAL replay, those whose answers the WAL did not keep must be asked again."""
        out: list[Effect] = [] if self._pending_build is None else [self._pending_build]
        asked = {h for h, verdict in self._verdicts.items() if verdict is None}
        for block in self._blocks.values():
            if block.hash in asked:
                asked.discard(block.hash)
                out.append(JudgeProposal(block))
        return out

    def rebroadcast(self, *, relay: bool = True) -> list[Effect]:
        """Messages of this height to send again, for peers who lost them: the current round's
        proposal and every vote this node holds (with `relay` False, only its own votes).

        Relaying others' votes is what the algorithm's liveness rests on ("what a correct node
        received, every correct node eventually receives"): without it, a validator that shows
        half the network one vote and half another can leave a proof of lock that only some
        nodes can see, and stall the height for good."""
        out: list[Effect] = []
        entry = self._proposals.get(self.round)
        if entry is not None:
            out.append(BroadcastProposal(entry[0], entry[1]))
        for key in sorted(self._votes):
            vote_set = self._votes[key]
            if relay:
                out += [BroadcastVote(v) for v in vote_set.all_votes()]
            elif self._my_index is not None and vote_set.get(self._my_index) is not None:
                out.append(BroadcastVote(vote_set.get(self._my_index)))  # type: ignore[arg-type]
        return out

    # -- height and round --------------------------------------------------------------------

    def _enter_height(self, chain: ChainState) -> None:
        self.chain = chain
        self.round = 0
        self.step = Step.NEW_HEIGHT
        self.locked_round, self.locked_block = -1, None
        self._locked_id: BlockID | None = None
        self.valid_round, self.valid_block = -1, None
        self._proposals: dict[int, tuple[Proposal, Block, BlockID]] = {}
        self._blocks: dict[BlockID, Block] = {}
        # Block hash -> verdict of valid(v); None while the application is asked.
        self._verdicts: dict[bytes, bool | None] = {}
        self._votes: dict[tuple[int, VoteType], VoteSet] = {}
        self._round_power: dict[int, dict[int, int]] = {}
        self._decisive_rounds: set[int] = set()
        self._fired: set[tuple[int, str]] = set()
        self._proposers: dict[int, Validator] = {}
        self._pending_build: BuildProposal | None = None
        self._decided: tuple[Block, BlockID, Commit] | None = None
        self._scheduled_start = False
        mine = None if self.key is None else chain.validators.by_id(self.key.id)
        self._my_index = None if mine is None else mine[0]
        self.evidence.set_validators(chain.height, chain.validators)
        if chain.last_validators is not None:
            self.evidence.set_validators(chain.last_height, chain.last_validators)

    def _start_round(self, round_: int) -> None:
        self.round = round_
        self.step = Step.PROPOSE
        self._pending_build = None
        p = self.params
        self._schedule(Step.PROPOSE, p.timeout_propose_ms + round_ * p.timeout_propose_delta_ms)
        if self.key is None or self.proposer(round_).id != self.key.id:
            return
        if self.valid_block is not None:
            self._propose(self.valid_block, self.valid_round)
            return
        time_ns = proposal_time(self.chain, self._now)
        budget = tx_budget(self.chain, self.params, time_ns=time_ns,
                           evidence=self.evidence.pending(self.height), proposer=self.key.id)
        self._pending_build = BuildProposal(height=self.height, round=round_, time_ns=time_ns,
                                            max_bytes=budget, max_txs=self.params.block_max_txs)
        self._out.append(self._pending_build)

    def _schedule(self, step: Step, duration_ms: int) -> None:
        self._out.append(ScheduleTimeout(self.height, self.round, step, duration_ms))

    # -- event handlers ----------------------------------------------------------------------

    def _on_start(self, ev: Start) -> None:
        if self.step == Step.NEW_HEIGHT and not self._scheduled_start:
            self._scheduled_start = True
            self._schedule(Step.NEW_HEIGHT, self.params.timeout_commit_ms)

    def _on_timeout(self, ev: TimeoutFired) -> None:
        if ev.height != self.height or self.step == Step.COMMIT:
            return
        if ev.step == Step.NEW_HEIGHT:
            if self.step == Step.NEW_HEIGHT:
                self._start_round(0)
        elif ev.round != self.round or self.step == Step.NEW_HEIGHT:
            return
        elif ev.step == Step.PROPOSE and self.step == Step.PROPOSE:
            self._vote(VoteType.PREVOTE, None)
        elif ev.step == Step.PREVOTE and self.step == Step.PREVOTE:
            self._vote(VoteType.PRECOMMIT, None)
        elif ev.step == Step.PRECOMMIT:
            self._start_round(self.round + 1)

    def _on_proposal(self, ev: ProposalReceived) -> None:
        self._accept_proposal(ev.proposal, ev.block, own=False)

    def _accept_proposal(self, p: Proposal, block: Block, *, own: bool) -> None:
        if p.height != self.height or self.step == Step.COMMIT:
            return
        if p.round > self.round + ROUND_WINDOW or p.round in self._proposals:
            # One proposal per round: a proposer that equivocates gets its first one heard.
            return
        proposer = self.proposer(p.round)
        if p.proposer != proposer.id:
            return
        if not own and not verify_proposal(self.chain_id, p, proposer.pubkey):
            return
        block_id = block_id_of(block)
        if block_id != p.block_id:
            return
        if p.pol_round == -1 and block.header.proposer != p.proposer:
            return
        self._proposals[p.round] = (p, block, block_id)
        self._blocks[block_id] = block
        self._judge(block)

    def _judge(self, block: Block) -> None:
        key = block.hash
        if key in self._verdicts:
            return
        try:
            validate_block(self.chain, self.params, block)
            self.evidence.check_block(block.evidence, self.height)
        except (BlockRejected, InvalidEvidence):
            self._verdicts[key] = False
            return
        self._verdicts[key] = None
        self._out.append(JudgeProposal(block))

    def _on_judged(self, ev: ProposalJudged) -> None:
        if ev.block_hash in self._verdicts and self._verdicts[ev.block_hash] is None:
            self._verdicts[ev.block_hash] = ev.valid

    def _on_votes(self, ev: VotesReceived) -> None:
        if self.step == Step.COMMIT:
            return
        groups: dict[tuple[int, VoteType], list[Vote]] = {}
        for vote in ev.votes:
            if vote.height == self.height and vote.round <= self.round + ROUND_WINDOW:
                groups.setdefault((vote.round, vote.type), []).append(vote)
        for (round_, type_), votes in groups.items():
            vote_set = self._vote_set(round_, type_)
            for vote, outcome in zip(votes, vote_set.add_votes(votes), strict=True):
                if isinstance(outcome, ConflictingVote):
                    self._add_evidence(outcome.evidence)
                if outcome is True or isinstance(outcome, ConflictingVote) and outcome.counted:
                    self._counted(vote_set, vote)

    def _on_evidence(self, ev: EvidenceReceived) -> None:
        self._add_evidence(ev.evidence)

    def _add_evidence(self, evidence: DuplicateVoteEvidence) -> None:
        try:
            if self.evidence.add(evidence, self.height):
                self._out.append(RecordEvidence(evidence))
        except InvalidEvidence:
            pass

    def _on_txs_ready(self, ev: ProposalTxsReady) -> None:
        pending, self._pending_build = self._pending_build, None
        if (pending is None or (pending.height, pending.round) != (ev.height, ev.round)
                or self.step != Step.PROPOSE or ev.round != self.round):
            return
        self._propose(fit_block(self.chain, self.params, time_ns=pending.time_ns, txs=ev.txs,
                                evidence=self.evidence.pending(self.height),
                                proposer=self.key.id), -1)  # type: ignore[union-attr]

    def _on_commit_received(self, ev: CommitReceived) -> None:
        """Block sync: a commit signed by +2/3 of this height's set decides the height. The
        application's verdict is not asked (the block is decided already); evidence is trusted
        for the same reason."""
        if ev.block.header.height != self.height or self.step == Step.COMMIT:
            return
        block_id = block_id_of(ev.block)
        try:
            verify_commit(self.chain_id, self.chain.validators, self.height, block_id, ev.commit)
        except InvalidCommit:
            return
        if ev.block.header.app_hash != self.chain.app_hash:
            # More than 2/3 of the power committed a block built on another state than ours:
            # this node's state diverged. Going on would only stall it silently; stop loudly.
            raise AppHashMismatch(self.height - 1, self.chain.app_hash, ev.block.header.app_hash)
        try:
            validate_block(self.chain, self.params, ev.block)
        except BlockRejected:
            return
        self._decide(ev.block, block_id, ev.commit)

    def _on_block_committed(self, ev: BlockCommitted) -> None:
        if self.step != Step.COMMIT or ev.height != self.height or self._decided is None:
            return
        block, block_id, commit = self._decided
        self.evidence.mark_committed(block.evidence, self.height)
        chain = self.chain.advance(
            block, block_id, commit, app_hash=ev.app_hash, results_hash=ev.results_hash,
            validator_updates=ev.validator_updates)
        self._enter_height(chain)
        self._scheduled_start = True
        self._schedule(Step.NEW_HEIGHT, self.params.timeout_commit_ms)

    # -- the upon-rules ----------------------------------------------------------------------

    def _run_rules(self) -> None:
        while self.step != Step.COMMIT and self._apply_one_rule():
            pass

    def _apply_one_rule(self) -> bool:
        if self._try_decide() or self._try_round_skip():
            return True
        if self.step == Step.NEW_HEIGHT:
            return False
        r = self.round
        if self.step == Step.PROPOSE and self._try_prevote_proposal():
            return True
        prevotes = self._votes.get((r, VoteType.PREVOTE))
        if prevotes is not None:
            majority = prevotes.two_thirds_majority()
            if (self.step == Step.PREVOTE and prevotes.has_two_thirds_any()
                    and self._first(r, "prevote-timeout")):
                p = self.params
                self._schedule(Step.PREVOTE, p.timeout_prevote_ms + r * p.timeout_prevote_delta_ms)
                return True
            if isinstance(majority, BlockID) and self._try_lock(majority):
                return True
            if majority is None and self.step == Step.PREVOTE:
                self._vote(VoteType.PRECOMMIT, None)
                return True
        precommits = self._votes.get((r, VoteType.PRECOMMIT))
        if (precommits is not None and precommits.has_two_thirds_any()
                and self._first(r, "precommit-timeout")):
            p = self.params
            self._schedule(Step.PRECOMMIT,
                           p.timeout_precommit_ms + r * p.timeout_precommit_delta_ms)
            return True
        return False

    def _first(self, round_: int, rule: str) -> bool:
        """True once per (round, rule): the paper's "for the first time"."""
        if (round_, rule) in self._fired:
            return False
        self._fired.add((round_, rule))
        return True

    def _try_prevote_proposal(self) -> bool:
        entry = self._proposals.get(self.round)
        if entry is None:
            return False
        proposal, _, block_id = entry
        verdict = self._verdicts.get(block_id.hash)
        if verdict is None:
            return False  # the application has not answered yet
        if proposal.pol_round == -1:
            ok = self.locked_round == -1 or self._locked_id == block_id
        else:
            pol = self._votes.get((proposal.pol_round, VoteType.PREVOTE))
            if pol is None or pol.two_thirds_majority() != block_id:
                return False  # no proof of lock yet: wait (or time out)
            ok = self.locked_round <= proposal.pol_round or self._locked_id == block_id
        self._vote(VoteType.PREVOTE, block_id if verdict and ok else None)
        return True

    def _try_lock(self, majority: BlockID) -> bool:
        """+2/3 prevotes for this round's valid proposal: lock and precommit it (if still in
        the prevote step), and make it the valid block."""
        r = self.round
        entry = self._proposals.get(r)
        if (self.step < Step.PREVOTE or entry is None or entry[2] != majority
                or self._verdicts.get(majority.hash) is not True or not self._first(r, "pol")):
            return False
        block = entry[1]
        if self.step == Step.PREVOTE:
            self.locked_round, self.locked_block, self._locked_id = r, block, majority
            self._vote(VoteType.PRECOMMIT, majority)
        self.valid_round, self.valid_block = r, block
        return True

    def _try_decide(self) -> bool:
        for r in sorted(self._decisive_rounds):
            precommits = self._votes[(r, VoteType.PRECOMMIT)]
            block_id = precommits.two_thirds_majority()
            block = self._blocks.get(block_id)  # type: ignore[arg-type]
            if block is not None and self._verdicts.get(block_id.hash) is True:  # type: ignore
                self._decide(block, block_id, precommits.make_commit())  # type: ignore[arg-type]
                return True
        return False

    def _try_round_skip(self) -> bool:
        needed = self.chain.validators.one_third_plus
        later = [r for r, power in self._round_power.items()
                 if r > self.round and sum(power.values()) >= needed]
        if not later:
            return False
        self._start_round(max(later))
        return True

    def _decide(self, block: Block, block_id: BlockID, commit: Commit) -> None:
        self.step = Step.COMMIT
        self._decided = (block, block_id, commit)
        self._out.append(CommitBlock(block, commit))

    # -- votes and signing -------------------------------------------------------------------

    def _vote_set(self, round_: int, type_: VoteType) -> VoteSet:
        vote_set = self._votes.get((round_, type_))
        if vote_set is None:
            vote_set = self._votes[(round_, type_)] = VoteSet(
                self.chain_id, self.height, round_, type_, self.chain.validators)
        return vote_set

    def _counted(self, vote_set: VoteSet, vote: Vote) -> None:
        power = self.chain.validators[vote.validator_index].power
        self._round_power.setdefault(vote.round, {})[vote.validator_index] = power
        if vote.type == VoteType.PRECOMMIT and isinstance(vote_set.two_thirds_majority(),
                                                          BlockID):
            self._decisive_rounds.add(vote.round)

    def _vote(self, type_: VoteType, block_id: BlockID | None) -> None:
        """Move to the step after this vote, and sign and send it if this node validates."""
        self.step = Step.PREVOTE if type_ == VoteType.PREVOTE else Step.PRECOMMIT
        if self._my_index is None:
            return
        vote_set = self._vote_set(self.round, type_)
        mine = vote_set.get(self._my_index)
        if mine is not None:
            # Our own vote came back from peers (signed before a crash that the WAL did not
            # survive): never sign another; send that one again if it is the same choice.
            if mine.block_id == block_id:
                self._out.append(BroadcastVote(mine))
            return
        vote = Vote(type=type_, height=self.height, round=self.round, block_id=block_id,
                    time_ns=self._now, validator=self.key.id,  # type: ignore[union-attr]
                    validator_index=self._my_index, signature=bytes(64))
        record = self._sign(_SIGN_STEP[type_], vote_sign_bytes(self.chain_id, vote))
        if record is None:
            return
        vote = msgspec.structs.replace(vote, time_ns=record.time_ns, signature=record.signature)
        self._out += [PersistBeforeSend(record), BroadcastVote(vote)]
        if vote_set.add_vote(vote, signature_checked=True):
            self._counted(vote_set, vote)

    def _propose(self, block: Block, pol_round: int) -> None:
        if self.round in self._proposals:
            return  # our own proposal came back from peers: it stands, never sign another
        proposal = Proposal(height=self.height, round=self.round, pol_round=pol_round,
                            block_id=block_id_of(block), time_ns=self._now,
                            proposer=self.key.id, signature=bytes(64))  # type: ignore[union-attr]
        record = self._sign(SignStep.PROPOSAL, proposal_sign_bytes(self.chain_id, proposal))
        if record is None:
            return
        proposal = msgspec.structs.replace(proposal, time_ns=record.time_ns,
                                           signature=record.signature)
        self._out += [PersistBeforeSend(record), BroadcastProposal(proposal, block)]
        self._accept_proposal(proposal, block, own=True)

    def _sign(self, step: SignStep, sign_bytes: bytes) -> SignRecord | None:
        """The record to send under (None: signing would conflict, nothing is sent)."""
        record = sign_once(self.last_signed, self.key, self.height, self.round, step,
                           sign_bytes)  # type: ignore[arg-type]
        if record is not None:
            self.last_signed = record
        return record
