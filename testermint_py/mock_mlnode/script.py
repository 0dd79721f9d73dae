"""`MockScript`: how a mock ML node misbehaves (or not), settable at start and at run time.

Types only. The server reads the current script on every request and every PoC batch, so a
change through `POST /mock/script` takes effect from the next one. `POST /mock/script` merges
the fields it names into the current script; `PUT /mock/script` replaces it (absent fields take
their defaults). A script that does not decode (unknown field, bad value) is a 400 and changes
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Seconds = Annotated[float, Meta(ge=0.0, le=3600.0)]
# Path prefixes a fault applies to; "" matches every path (the fault hook skips /mock/...).
PathPrefixes = Annotated[tuple[str, ...], Meta(max_length=64)]


class MockScript(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # -- PoC generation -------------------------------------------------------------------------
    # Valid nonces found per PoC session (then the generator idles); None: no cap, one batch
    # every batch_interval_s for as long as the session generates.
    weight: Annotated[int, Meta(ge=0, le=10_000_000)] | None = 100
    # Valid nonces per generation batch (exactly; the last batch may be smaller), and the pause
    # between batches: valid nonces per second = weight_per_batch / batch_interval_s.
    weight_per_batch: Annotated[int, Meta(ge=1, le=1_000_000)] = 100
    batch_interval_s: Seconds = 0.0
    # PoC fraud: this fraction of every batch's claimed nonces are ones the PoC function says are
    # invalid, claimed with a made-up distance below r_target (a validator's recompute differs).
    poc_fraud: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.0

    # -- inference ------------------------------------------------------------------------------
    # What a cheating executor returns: "tokens" emits the second most likely token at every
    # position (claiming honest-looking logprobs for it); "logprobs" emits the right tokens with
    # every reported logprob tripled.
    tamper: Literal["tokens", "logprobs"] | None = None
    # POST /inference/up fails with this message (after inference_start_delay_s).
    inference_start_failure: str | None = None
    inference_start_delay_s: Seconds = 0.0
    # The inference backend "dies": the node's watchdog records the failure and stops.
    inference_crash: bool = False
    # Pause before each streamed token.
    token_delay_s: Seconds = 0.0

    # -- HTTP faults ----------------------------------------------------------------------------
    # Wait this long before answering requests under delay_paths.
    delay_s: Seconds = 0.0
    delay_paths: PathPrefixes = ("",)
    # Answer requests under these prefixes with 200 and a body that is not JSON.
    invalid_json_paths: PathPrefixes = ()
    # Stop answering (requests hang, PoC generation pauses) until set back to false; /mock/...
    # keeps answering so that a test can bring the node back.
    disappeared: bool = False

    def __post_init__(self) -> None:
        if self.weight is None and self.batch_interval_s == 0.0:
            raise ValueError("weight null (no cap) needs batch_interval_s > 0")


def matches(path: str, prefixes: Sequence[str]) -> bool:
    return any(path.startswith(p) for p in prefixes)
