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
Fraction = Annotated[float, Meta(ge=0.0, le=1.0)]
# Path prefixes a fault applies to; "" matches every path (the fault hook skips /mock/...).
PathPrefixes = Annotated[tuple[str, ...], Meta(max_length=64)]
ModelId = Annotated[str, Meta(min_length=1, max_length=256)]
# A scripted completion: printable ASCII (and tab, newline), so that every character is one
# token of the mock's byte-level tokenizer and every streamed token is a whole character.
ResponseText = Annotated[str, Meta(min_length=1, max_length=4096,
                                   pattern=r"^[\t\n\x20-\x7e]+$")]


class MockScript(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the mock does, by the behaviours a harness scripts:

    * PoC weight: `weight` valid nonces per session, `weight_per_batch` at a time, a batch every
      `batch_interval_s`.
    * PoC fraud: `poc_fraud` (made-up nonces: invalid ones claimed with distances below
      r_target) and `poc_duplicates` (valid nonces claimed again).
    * Response delay: `delay_s` before answering any request under `delay_paths` (the whole
      answer, or a stream's first byte), `token_delay_s` before each streamed token.
    * Wrong logprobs: `tamper="logprobs"` (right tokens, every logprob tripled);
      `tamper="tokens"` (wrong tokens with honest-looking logprobs).
    * Invalid JSON: a 200 whose body is not JSON on `invalid_json_paths`.
    * Streaming cut: `stream_cut_after` SSE events, then the connection drops, no `[DONE]`.
    * Per-model responses: `responses`, the completion text of each served model.
    * Node faults: `inference_start_failure` (and `inference_start_delay_s`), `inference_crash`,
      `disappeared`.
    """

    # -- PoC generation -------------------------------------------------------------------------
    # Nonces claimed per PoC session (then the generator idles); None: no cap, one batch
    # every batch_interval_s for as long as the session generates.
    weight: Annotated[int, Meta(ge=0, le=10_000_000)] | None = 100
    # Nonces claimed per generation batch (exactly; the last batch may be smaller), and the pause
    # between batches: claimed nonces per second = weight_per_batch / batch_interval_s.
    weight_per_batch: Annotated[int, Meta(ge=1, le=1_000_000)] = 100
    batch_interval_s: Seconds = 0.0
    # PoC fraud: this fraction of every batch's claimed nonces are ones the PoC function says are
    # invalid, claimed with a made-up distance below r_target (a validator's recompute differs).
    poc_fraud: Fraction = 0.0
    # PoC fraud: this fraction of every batch's claimed nonces repeat valid nonces the session
    # has already claimed, with their true distances: earlier in the same batch or in an earlier
    # one (the session's first 65,536 valid nonces, in turn). The node claims `weight` nonces but
    # found fewer distinct ones: an API node keeping a sorted unique list counts each once, and a
    # validator's recompute fails every repeat (`n_duplicates`). A first batch with nothing
    # earlier to repeat claims at least one fresh valid nonce. poc_fraud + poc_duplicates <= 1.
    poc_duplicates: Fraction = 0.0

    # -- inference ------------------------------------------------------------------------------
    # What a cheating executor returns: "tokens" emits the second most likely token at every
    # position (claiming honest-looking logprobs for it); "logprobs" emits the right tokens with
    # every reported logprob tripled.
    tamper: Literal["tokens", "logprobs"] | None = None
    # Per-model responses, by served model id: the completion of that model is exactly this
    # text whatever the prompt (cut by max_tokens). Its tokens are its bytes; at every position
    # the model's distribution makes the text's token the most likely (the other logprobs stay
    # the prompt's hash-defined ones), so the logprobs agree with the text and a validator mock
    # with the same script replays it as honest. Models not named answer the hash-defined text
    # (which already differs per model, but is not recognisable).
    responses: Annotated[dict[ModelId, ResponseText], Meta(max_length=64)] = {}
    # POST /inference/up fails with this message (after inference_start_delay_s).
    inference_start_failure: str | None = None
    inference_start_delay_s: Seconds = 0.0
    # The inference backend "dies": the node's watchdog records the failure and stops.
    inference_crash: bool = False
    # Pause before each streamed token.
    token_delay_s: Seconds = 0.0
    # A streamed chat completion sends this many SSE events (the first is the role chunk) and
    # then the connection drops mid-body: no `[DONE]`, no end of the chunked body (the client
    # reads an incomplete message, as when a vLLM server dies mid-stream). A stream of no more
    # events than this, `[DONE]` included, is not cut. None: never cut.
    stream_cut_after: Annotated[int, Meta(ge=0, le=1_000_000)] | None = None

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
        if self.poc_fraud + self.poc_duplicates > 1.0:
            raise ValueError(f"poc_fraud {self.poc_fraud} + poc_duplicates "
                             f"{self.poc_duplicates} claim more than every nonce")


def matches(path: str, prefixes: Sequence[str]) -> bool:
    return any(path.startswith(p) for p in prefixes)
