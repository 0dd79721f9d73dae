"""The mock ML node's language model: a deterministic, hash-defined next-token distribution.

No weights: the distribution after a prefix comes from a BLAKE3 chain over (model name, prompt
ids, output ids so far), over a small output alphabet (lower-case letters, space, ".", ","). The
mock always decodes greedily, so the same request gives the same output on every mock node, and
a validator mock can tell what an honest executor mock would have emitted at every position.
A model given a fixed text (`MockScript.responses`) emits that text instead: at each of its
positions the text's token takes the top logprob and the other tokens keep theirs in order, so
the reported logprobs stay consistent with the output and replaying it agrees.

Tokenizer: byte level (token id = UTF-8 byte); chat messages are rendered with a fixed template
and the assistant's generation prompt, so prompt token counts are real counts of this tokenizer.

Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import blake3

from chain.types.inference_scoring import PositionLogprobs, TokenLogprob

VOCAB_SIZE = 256
OUTPUT_ALPHABET: tuple[int, ...] = tuple(b"abcdefghijklmnopqrstuvwxyz .,")
MAX_TOP_LOGPROBS = 20
# Tokens outside the output alphabet are (almost) impossible.
UNLIKELY_LOGPROB = -50.0
# Spread of the hash-derived logits: the most likely token has a probability of about 0.2.
LOGIT_SCALE = 6.0
# Without max_tokens an output has this many tokens or more (and fewer than the maximum).
NATURAL_LENGTH = (16, 64)
_DOMAIN = b"gonka-mock-lm-v1\x00"


def render_chat(messages: Sequence[tuple[str, str]], add_generation_prompt: bool = True) -> str:
    """The chat template: one block per message, then the assistant's turn."""
    text = "".join(f"<|{role}|>\n{content}\n" for role, content in messages)
    return text + ("<|assistant|>\n" if add_generation_prompt else "")


def tokenize(text: str) -> list[int]:
    return list(text.encode("utf-8"))


def detokenize(ids: Sequence[int]) -> str:
    return bytes(ids).decode("utf-8", errors="replace")


def token_text(token_id: int) -> str:
    return detokenize([token_id])


@dataclass(frozen=True)
class Step:
    """One generated position: the emitted token, the logprob reported for it and the top
    candidates (most likely first) reported with it."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...]

    def position(self, k: int) -> PositionLogprobs:
        return PositionLogprobs(self.token_id, self.logprob,
                                [TokenLogprob(t, lp) for t, lp in self.top[:k]])


@dataclass(frozen=True)
class Generation:
    prompt_tokens: int
    steps: tuple[Step, ...]
    finish_reason: str          # "stop" (natural end) or "length" (max_tokens reached)

    @property
    def token_ids(self) -> list[int]:
        return [s.token_id for s in self.steps]

    @property
    def text(self) -> str:
        return detokenize(self.token_ids)


def forcing(dist: tuple[tuple[int, float], ...], token: int) -> tuple[tuple[int, float], ...]:
    """`dist` (most likely first) with `token` the most likely: it takes the top logprob and the
    other tokens the next ones in their order (the last drops out when `token` was not in it)."""
    tokens = [token, *(t for t, _ in dist if t != token)][:len(dist)]
    return tuple(zip(tokens, (lp for _, lp in dist), strict=True))


@dataclass(frozen=True)
class MockLM:
    """The model served under `name` (the name is part of the hash: two models differ), and the
    text it always answers, if it is given one."""

    name: str
    fixed: str | None = None

    def start(self, prompt_ids: Sequence[int]) -> bytes:
        data = _DOMAIN + self.name.encode() + b"\x00" + array("I", prompt_ids).tobytes()
        return blake3.blake3(data).digest()

    @staticmethod
    def advance(state: bytes, token_id: int) -> bytes:
        return blake3.blake3(state + token_id.to_bytes(4, "little")).digest()

    @staticmethod
    def distribution(state: bytes) -> tuple[tuple[int, float], ...]:
        """(token, logprob) of every alphabet token, most likely first (ties by token id)."""
        raw = blake3.blake3(b"logits" + state).digest(length=2 * len(OUTPUT_ALPHABET))
        logits = [int.from_bytes(raw[2 * i:2 * i + 2], "little") / 65535.0 * LOGIT_SCALE
                  for i in range(len(OUTPUT_ALPHABET))]
        top = max(logits)
        lse = top + math.log(sum(math.exp(v - top) for v in logits))
        pairs = [(tok, v - lse) for tok, v in zip(OUTPUT_ALPHABET, logits, strict=True)]
        return tuple(sorted(pairs, key=lambda p: (-p[1], p[0])))

    @staticmethod
    def natural_length(state: bytes) -> int:
        lo, hi = NATURAL_LENGTH
        return lo + int.from_bytes(blake3.blake3(b"length" + state).digest(length=4),
                                   "little") % (hi - lo)

    def _forced(self) -> list[int]:
        return [] if self.fixed is None else tokenize(self.fixed)

    def _distribution_at(self, state: bytes, position: int, forced: Sequence[int]
                         ) -> tuple[tuple[int, float], ...]:
        dist = self.distribution(state)
        return forcing(dist, forced[position]) if position < len(forced) else dist

    def generate(self, prompt_ids: Sequence[int], max_tokens: int | None,
                 tamper: str | None = None) -> Generation:
        """Greedy decoding; `tamper` is what a cheating executor does instead (MockScript)."""
        state = self.start(prompt_ids)
        forced = self._forced()
        natural = len(forced) if forced else self.natural_length(state)
        n = natural if max_tokens is None else min(natural, max_tokens)
        steps = []
        for i in range(n):
            dist = self._distribution_at(state, i, forced)
            if tamper == "tokens":
                token, logprob = dist[1]
                steps.append(Step(token, logprob, dist))
            elif tamper == "logprobs":
                token, logprob = dist[0]
                steps.append(Step(token, 3.0 * logprob,
                                  tuple((t, 3.0 * lp) for t, lp in dist)))
            else:
                token, logprob = dist[0]
                steps.append(Step(token, logprob, dist))
            state = self.advance(state, token)
        return Generation(len(prompt_ids), tuple(steps), "stop" if n == natural else "length")

    def replay(self, prompt_ids: Sequence[int], output_ids: Sequence[int],
               top_k: int) -> list[PositionLogprobs]:
        """Per output position (teacher forcing the claimed prefix): the token this model emits
        there, its logprob and the top-k. An honest mock's output comes back unchanged; any other
        token comes back different, which `chain.types.inference_scoring.score` scores as a
        failure."""
        state = self.start(prompt_ids)
        forced = self._forced()
        positions = []
        for i, claimed in enumerate(output_ids):
            dist = self._distribution_at(state, i, forced)
            token, logprob = dist[0]
            positions.append(PositionLogprobs(token, logprob,
                                              [TokenLogprob(t, lp) for t, lp in dist[:top_k]]))
            state = self.advance(state, claimed)
        return positions
