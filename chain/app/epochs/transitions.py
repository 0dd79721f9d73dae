"""The epoch clock: the end-of-block work that starts a PoC, forms the next group and switches
epochs. It runs after every other module's end-of-block hook (it is last in MODULES).

At the end of block h, with E the effective epoch:
1. h >= the next PoC start and epoch E+1 does not exist: create it (PoC start = h).
2. E+1 exists, has no group and h >= its validation_end: form its group (poc.weights).
3. E+1's group exists and h >= its set_new_validators: settle E and switch:
   a. validation.close_epoch(E): disputes of E still open keep their coins on hold;
   b. rewards.settle(E): every participant's work and reward coins, downtime slashing,
      reputation summaries, expired claims burned, vesting advanced;
   c. collateral.advance_epoch(E+1): unbonding that completes now is paid;
   d. epoch E-1 is pruned (validation, then inference): settle(E) has just burned E-1's
      unclaimed amounts, so nothing can read its records, validations or resolved votes again;
   e. E+1 becomes effective and its members (weight > 0) become the validator set; validators
      not in it get power 0. Consensus applies the update two heights later.
The `>=` tests (with the "not yet done" state) keep the clock moving even if a governance change
of the epoch params moves a stage height to before the current height.
"""

from __future__ import annotations

import msgspec

from chain.app.collateral.state import advance_epoch
from chain.app.context import Context
from chain.app.epochs import state
from chain.app.inference.state import prune_epoch as prune_inferences
from chain.app.poc.weights import form_group
from chain.app.rewards.settlement import settle
from chain.app.validation.hooks import close_epoch
from chain.app.validation.state import prune_epoch as prune_validations
from chain.app.validators.state import Validator, all_validators, set_validator


def end_block(ctx: Context) -> None:
    effective = state.effective_epoch(ctx.store)
    upcoming = state.get_epoch(ctx.store, effective + 1)
    if upcoming is None:
        if ctx.height >= state.next_poc_start(ctx.store):
            start_poc(ctx, effective + 1)
        return
    stages = state.stages(state.epoch_params(ctx.store), upcoming.poc_start)
    group = state.get_group(ctx.store, upcoming.index)
    if group is None:
        if ctx.height >= stages.validation_end:
            form_group(ctx, upcoming.index)
        return
    if ctx.height >= stages.set_new_validators:
        switch(ctx, effective, upcoming.index)


def start_poc(ctx: Context, index: int) -> None:
    state.put_epoch(ctx.store, state.Epoch(index=index, poc_start=ctx.height))
    s = state.stages(state.epoch_params(ctx.store), ctx.height)
    ctx.emit("poc_start", epoch=index, poc_start=ctx.height, commit_deadline=s.commit_deadline,
             validation_end=s.validation_end, set_new_validators=s.set_new_validators)


def switch(ctx: Context, ending: int, new: int) -> None:
    close_epoch(ctx, ending)
    settle(ctx, ending)
    advance_epoch(ctx, new)
    if ending >= 1:
        # Validation first: it finds the epoch's votes through inference's by_epoch index.
        prune_validations(ctx, ending - 1)
        prune_inferences(ctx, ending - 1)
    old_group = state.get_group(ctx.store, ending)
    if old_group is not None:
        state.put_group(ctx.store, msgspec.structs.replace(old_group, last_height=ctx.height))
    group = state.get_group(ctx.store, new)
    assert group is not None
    state.put_group(ctx.store, msgspec.structs.replace(
        group, effective_height=ctx.height,
        previous_epoch_requests=old_group.number_of_requests if old_group else 0))
    state.set_effective_epoch(ctx.store, new)
    push_validator_set(ctx, new)
    ctx.emit("epoch_switch", epoch=new, previous=ending, total_weight=group.total_weight)


def push_validator_set(ctx: Context, index: int) -> None:
    """Make epoch `index`'s members with weight the validator set (power = weight)."""
    wanted = {m.validator_key: m for m in state.members(ctx.store, index)
              if m.weight > 0 and len(m.validator_key) == 32}
    for validator in all_validators(ctx.store):
        if validator.pubkey not in wanted:
            set_validator(ctx, Validator(pubkey=validator.pubkey, power=0,
                                         operator=validator.operator, name=validator.name))
    for key, member in sorted(wanted.items()):
        set_validator(ctx, Validator(pubkey=key, power=member.weight, operator=member.address))
