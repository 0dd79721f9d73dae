"""Handlers of the poc messages.

MsgPocCommit: from a registered participant, for the epoch whose PoC is running, in heights
[poc_start + 1, commit_deadline] (the block hash of poc_start seeds the function, so nothing can
be computed before it is committed). A later commit replaces an earlier one.

MsgPocValidation: from a member with weight of the effective epoch's group (the current
validators), about another participant that committed, in [validation_start, validation_end].
A later verdict of the same validator replaces its earlier one.
"""

from __future__ import annotations

from chain.app.context import Context
from chain.app.epochs import state as epochs
from chain.app.epochs.handlers import OutsideWindow, running_poc
from chain.app.errors import TxError
from chain.app.participants.state import require_participant
from chain.app.poc import state
from chain.types.msgs import MsgPocCommit, MsgPocValidation


class PocError(TxError):
    codespace = "poc"


class NotAValidator(PocError):
    code = 701

    def __init__(self, address: str, epoch: int) -> None:
        super().__init__(f"{address} holds no weight in epoch {epoch}'s group, so it cannot "
                         "validate PoC")
        self.address, self.epoch = address, epoch


class SelfValidation(PocError):
    code = 702

    def __init__(self, address: str) -> None:
        super().__init__(f"{address} cannot validate its own PoC")
        self.address = address


class NoCommit(PocError):
    code = 703

    def __init__(self, participant: str, epoch: int) -> None:
        super().__init__(f"{participant} made no PoC commit in epoch {epoch}")
        self.participant, self.epoch = participant, epoch


def handle_commit(ctx: Context, msg: MsgPocCommit) -> None:
    require_participant(ctx.store, msg.participant)
    stages = running_poc(ctx, "a PoC commit", msg.epoch)
    if not stages.poc_start < ctx.height <= stages.commit_deadline:
        raise OutsideWindow("a PoC commit", ctx.height, stages.poc_start + 1,
                            stages.commit_deadline)
    state.put_commit(ctx.store, msg.epoch, state.PocCommitRecord(
        participant=msg.participant, count=msg.count, root=msg.root, height=ctx.height))
    ctx.emit("poc_commit", participant=msg.participant, epoch=msg.epoch, count=msg.count,
             root=msg.root.hex())


def handle_validation(ctx: Context, msg: MsgPocValidation) -> None:
    effective = epochs.effective_epoch(ctx.store)
    member = epochs.get_member(ctx.store, effective, msg.validator)
    if member is None or member.weight == 0:
        raise NotAValidator(msg.validator, effective)
    if msg.validator == msg.participant:
        raise SelfValidation(msg.validator)
    stages = running_poc(ctx, "a PoC validation", msg.epoch)
    if not stages.validation_start <= ctx.height <= stages.validation_end:
        raise OutsideWindow("a PoC validation", ctx.height, stages.validation_start,
                            stages.validation_end)
    if state.get_commit(ctx.store, msg.epoch, msg.participant) is None:
        raise NoCommit(msg.participant, msg.epoch)
    state.put_validation(ctx.store, msg.epoch, state.PocValidationRecord(
        participant=msg.participant, validator=msg.validator, fraud=msg.fraud,
        checked=msg.checked, failed=msg.failed, height=ctx.height))
    ctx.emit("poc_validation", validator=msg.validator, participant=msg.participant,
             epoch=msg.epoch, fraud=msg.fraud)


HANDLERS = {MsgPocCommit: handle_commit, MsgPocValidation: handle_validation}
