"""Settlement of an epoch (filled in by the rewards module)."""

from __future__ import annotations

from chain.app.context import Context


def settle(ctx: Context, epoch: int) -> None:
    """Settle every participant for `epoch` (see chain/app/PROTOCOL.md, rewards)."""
    del ctx, epoch
