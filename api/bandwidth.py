"""The transfer agent's bandwidth limiter (reference section 12): every host gets an equal share
of the chain-wide budget of estimated request bytes per block, and refuses (HTTP 429) a request
that would push its average over the lifetime of a request above that share.

A request admitted at height h is estimated at prompt_tokens x in + max_tokens x out bytes and
booked at slot h + L (L = the chain's inference expiration_blocks: how long a request may be in
flight); it is admitted iff (sum of the slots h..h+L + estimate) / (L + 1) <= the share, and its
booking is released when the request ends. Pure bookkeeping: the caller passes heights.
"""

from __future__ import annotations

from collections import defaultdict

import msgspec


class BandwidthParams(msgspec.Struct, frozen=True):
    bytes_per_block: int          # the chain-wide budget
    bytes_per_input_token: int
    bytes_per_output_token: int
    lifespan_blocks: int          # L
    hosts: int                    # members of the current epoch group sharing the budget


class Booking(msgspec.Struct, frozen=True):
    slot: int
    size: int


class CapacityReached(Exception):
    """HTTP 429: try again later or another transfer agent."""

    def __init__(self, needed: int, limit: int, retry_after_blocks: int) -> None:
        super().__init__(f"transfer agent capacity reached: this request needs {needed} bytes "
                         f"of a {limit}-byte share per block already in use")
        self.needed, self.limit, self.retry_after_blocks = needed, limit, retry_after_blocks


class BandwidthLimiter:
    def __init__(self, params: BandwidthParams) -> None:
        self._usage: dict[int, int] = defaultdict(int)
        self.params = params

    def update(self, params: BandwidthParams) -> None:
        """New chain params or a new epoch (number of hosts); bookings are kept."""
        self.params = params

    @property
    def share(self) -> int:
        return self.params.bytes_per_block // max(1, self.params.hosts)

    def estimate(self, prompt_tokens: int, max_tokens: int) -> int:
        p = self.params
        return prompt_tokens * p.bytes_per_input_token + max_tokens * p.bytes_per_output_token

    def in_use(self, height: int) -> int:
        lifespan = self.params.lifespan_blocks
        return sum(self._usage.get(b, 0) for b in range(height, height + lifespan + 1))

    def admit(self, height: int, prompt_tokens: int, max_tokens: int) -> Booking:
        """Book a request at `height` or raise CapacityReached (nothing booked then)."""
        size = self.estimate(prompt_tokens, max_tokens)
        lifespan = self.params.lifespan_blocks
        if (self.in_use(height) + size) > self.share * (lifespan + 1):
            raise CapacityReached(size, self.share, retry_after_blocks=lifespan + 1)
        booking = Booking(slot=height + lifespan, size=size)
        self._usage[booking.slot] += size
        return booking

    def release(self, booking: Booking) -> None:
        left = self._usage.get(booking.slot, 0) - booking.size
        if left > 0:
            self._usage[booking.slot] = left
        else:
            self._usage.pop(booking.slot, None)

    def prune(self, height: int) -> None:
        """Forget slots that can no longer matter (older than `height`)."""
        for slot in [s for s in self._usage if s < height]:
            del self._usage[slot]
