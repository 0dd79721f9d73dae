"""The inference-validation score (chain.types.inference_scoring): pure unit tests."""

from __future__ import annotations

import math
import random

from chain.types.inference_scoring import PositionLogprobs, Score, TokenLogprob, score

VOCAB = 64
K = 5


def _softmax_logprobs(logits: list[float]) -> list[float]:
    top = max(logits)
    log_z = top + math.log(sum(math.exp(x - top) for x in logits))
    return [x - log_z for x in logits]


def _positions(logits_per_position: list[list[float]], tokens: list[int]) -> list[PositionLogprobs]:
    """What a sampler reports: the emitted token's logprob and the top-K by logprob."""
    out = []
    for logits, token in zip(logits_per_position, tokens, strict=True):
        logprobs = _softmax_logprobs(logits)
        ranked = sorted(range(len(logprobs)), key=lambda t: -logprobs[t])[:K]
        top = [TokenLogprob(t, logprobs[t]) for t in ranked]
        out.append(PositionLogprobs(token, logprobs[token], top))
    return out


def _model(seed: int, n: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.gauss(0.0, 3.0) for _ in range(VOCAB)] for _ in range(n)]


def _noisy(logits: list[list[float]], sigma: float, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[x + rng.gauss(0.0, sigma) for x in row] for row in logits]


def _greedy(logits: list[list[float]]) -> list[int]:
    return [max(range(len(row)), key=row.__getitem__) for row in logits]


def test_identical_logprobs_score_one():
    logits = _model(1, 40)
    tokens = _greedy(logits)
    original = _positions(logits, tokens)
    assert score(original, list(original)) == Score(similarity=1.0, reason=None, positions=40)


def test_small_numeric_noise_scores_high():
    logits = _model(2, 120)
    tokens = _greedy(logits)
    original = _positions(logits, tokens)
    replayed = _positions(_noisy(logits, 1e-3, seed=3), tokens)
    result = score(original, replayed)
    assert result.reason is None
    assert result.positions == 120
    assert 0.999 < result.similarity < 1.0


def test_a_different_model_scores_lower_than_noise():
    logits = _model(4, 120)
    tokens = _greedy(logits)
    original = _positions(logits, tokens)
    honest = score(original, _positions(_noisy(logits, 1e-3, seed=5), tokens))
    other_model = score(original, _positions(_model(6, 120), tokens))
    assert other_model.reason is None
    assert other_model.similarity < 0.9
    assert other_model.similarity < honest.similarity


def test_token_mismatch_fails_with_reason():
    logits = _model(7, 10)
    tokens = _greedy(logits)
    original = _positions(logits, tokens)
    changed = list(tokens)
    changed[3] = (changed[3] + 1) % VOCAB
    result = score(original, _positions(logits, changed))
    assert result.similarity == 0.0
    assert result.reason is not None and "position 3" in result.reason
    assert result.positions == 10


def test_length_mismatch_fails():
    logits = _model(8, 10)
    original = _positions(logits, _greedy(logits))
    result = score(original, original[:-1])
    assert result.similarity == 0.0
    assert result.reason is not None and "length" in result.reason
    assert score(original, []).similarity == 0.0
    assert score([], original).similarity == 0.0


def test_empty_inputs_have_nothing_to_disagree_on():
    assert score([], []) == Score(similarity=1.0, reason=None, positions=0)


def test_minus_infinity_is_clamped_like_vllm_masked_tokens():
    top = [TokenLogprob(1, -0.1), TokenLogprob(2, -3.0), TokenLogprob(3, -9999.0)]
    original = [PositionLogprobs(1, -0.1, top)]
    replayed = [PositionLogprobs(1, -0.1, [*top[:2], TokenLogprob(3, -math.inf)])]
    assert score(original, replayed).similarity == 1.0


def test_nan_logprob_fails():
    top = [TokenLogprob(1, -0.1), TokenLogprob(2, -3.0)]
    original = [PositionLogprobs(1, -0.1, [top[0], TokenLogprob(2, math.nan)])]
    result = score(original, [PositionLogprobs(1, -0.1, top)])
    assert result.similarity == 0.0
    assert result.reason is not None and "NaN" in result.reason


def test_missing_tokens_use_the_extrapolated_fill_value():
    # The original's two smallest are m1 = -2, m2 = -1: fill = m1 - (m2 - m1) = -3.
    original = [PositionLogprobs(1, -1.0, [TokenLogprob(1, -1.0), TokenLogprob(2, -2.0)])]
    replayed = [PositionLogprobs(1, -1.0, [TokenLogprob(1, -1.0), TokenLogprob(9, -3.0)])]
    assert score(original, replayed).similarity == 1.0
    # A replayed token far from the fill value costs at most 1/2 per entry.
    far = [PositionLogprobs(1, -1.0, [TokenLogprob(1, -1.0), TokenLogprob(9, -0.001)])]
    expected_term = abs(-0.001 - -3.0) / (1e-6 + 0.001 + 3.0) / 2
    assert math.isclose(score(original, far).similarity, 1 - expected_term / (100 * 2))


def test_single_entry_original_top_fills_100_below_it():
    original = [PositionLogprobs(1, -1.0, [TokenLogprob(1, -1.0)])]
    replayed = [PositionLogprobs(1, -1.0, [TokenLogprob(1, -1.0), TokenLogprob(2, -101.0)])]
    assert score(original, replayed).similarity == 1.0


def test_original_without_top_k_fails():
    original = [PositionLogprobs(1, -1.0, [])]
    replayed = [PositionLogprobs(1, -1.0, [TokenLogprob(1, -1.0)])]
    result = score(original, replayed)
    assert result.similarity == 0.0
    assert result.reason is not None and "no top-k" in result.reason


def test_normaliser_is_at_least_100_positions():
    original = [PositionLogprobs(1, -1.0, [TokenLogprob(1, -1.0), TokenLogprob(2, -2.0)])]
    replayed = [PositionLogprobs(1, -1.0, [TokenLogprob(1, -1.0), TokenLogprob(2, -4.0)])]
    term = 2.0 / (1e-6 + 6.0) / 2
    assert math.isclose(score(original, replayed).similarity, 1 - term / (100 * 2))
