"""A host's status (active / ramping / invalid) from its validation record, and what a fall to
INVALID costs it.

Recomputed for the executor whenever one of its inferences is validated, invalidated or
revalidated (reference 6.2, exact arithmetic instead of floats):

1. fpr^c < 1e-6, with fpr = false_positive_rate and c = consecutive invalidations -> invalid
   (with fpr 0.05: five in a row).
2. fewer than min_ramp_up_measurements completed inferences this period -> ramping.
3. z > 1 -> invalid, else active, where z = (inv/n - fpr) / sqrt(fpr(1-fpr)/n) over this
   period's n = validated + invalidated. Without the square root: z > 1 <=> inv/n - fpr > 0 and
   (inv/n - fpr)^2 * n > fpr(1 - fpr).

INVALID sticks until settlement (the rewards module forfeits the host's coins and sets it back
to active then): a later pass must not undo it and a second fall must not slash twice. On the
transition the host leaves the effective epoch's group (weight 0, validator power 0 at once)
and `slash_invalid_bps` of its collateral is burned.

This never changes anything but the host's status, group membership and collateral.
"""

from __future__ import annotations

from fractions import Fraction

import msgspec

from chain.app.collateral.state import collateral_params, slash
from chain.app.context import Context
from chain.app.epochs.state import effective_epoch, remove_member
from chain.app.params.state import get_params
from chain.app.participants.state import (
    ACTIVE,
    INVALID,
    RAMPING,
    Participant,
    Status,
    get_participant,
    put_participant,
)
from chain.app.validation.params import PPM, ValidationParams

INVALID_BELOW = Fraction(1, 1_000_000)


def status_for(participant: Participant, params: ValidationParams) -> Status:
    """The status the rules give `participant` (pure; ignores stickiness)."""
    fpr = Fraction(params.false_positive_rate_ppm, PPM)
    if fpr ** participant.consecutive_invalid < INVALID_BELOW:
        return INVALID
    stats = participant.stats
    if stats.inference_count < params.min_ramp_up_measurements:
        return RAMPING
    n = stats.validated + stats.invalidated
    if n > 0:
        excess = Fraction(stats.invalidated, n) - fpr
        if excess > 0 and excess * excess * n > fpr * (1 - fpr):
            return INVALID
    return ACTIVE


def recompute_status(ctx: Context, address: str) -> Status | None:
    """Recompute and store `address`'s status; apply the INVALID consequences on a transition.
    Returns the new status (None if `address` is not a participant)."""
    participant = get_participant(ctx.store, address)
    if participant is None:
        return None
    if participant.status == INVALID:
        return INVALID
    new = status_for(participant, get_params(ctx.store, "validation", ValidationParams))
    if new == participant.status:
        return new
    put_participant(ctx.store, msgspec.structs.replace(participant, status=new))
    ctx.emit("participant_status", participant=address, status=new,
             previous=participant.status)
    if new == INVALID:
        epoch = effective_epoch(ctx.store)
        remove_member(ctx, epoch, address, "invalid")
        slash(ctx, address, collateral_params(ctx.store).slash_invalid_bps, "invalid")
        ctx.emit("participant_invalid", participant=address, epoch=epoch,
                 consecutive_invalid=participant.consecutive_invalid,
                 validated=participant.stats.validated,
                 invalidated=participant.stats.invalidated)
    return new
