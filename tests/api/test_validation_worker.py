"""The validation worker's pure parts: the payload checks, reading the recorded output, the
decision around the chain's selection function, the score glue, and the durable duties."""

from __future__ import annotations

import base64

import msgspec
import pytest

from api.validation.duties import DutyStore
from api.validation.recorded import (
    Member,
    Payload,
    PayloadError,
    RecordDetails,
    check_payload,
    must_validate,
    recorded_positions,
    replay_messages,
    token_ids,
    token_texts,
    top_k,
)
from chain.app.validation.params import ValidationParams
from chain.app.validation.selection import should_validate
from chain.crypto.hashing import blake3_256
from chain.types.inference_scoring import PositionLogprobs, TokenLogprob, score, to_ppm
from testermint_py.mock_mlnode import lm

A, B, C = "gonka1validator", "gonka1executor", "gonka1other"
MODEL = "m"
PARAMS = ValidationParams()


def entry(token: str, logprob: float, top: list[tuple[str, float]]) -> dict:
    return {"token": token, "logprob": logprob,
            "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top]}


def completion(entries: list[dict]) -> dict:
    return {"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ab"},
                                    "logprobs": {"content": entries}}]}


ENTRIES = [entry("a", -0.1, [("a", -0.1), ("b", -2.0)]),
           entry("token_id:98", -0.3, [("token_id:98", -0.3), ("token_id:99", -1.5)])]


# -- the recorded output ----------------------------------------------------------------------


def test_a_json_answer_and_its_sse_form_give_the_same_positions():
    json_answer = msgspec.json.encode(completion(ENTRIES))
    sse = b"".join(b"data: " + msgspec.json.encode(completion([e])) + b"\n\n" for e in ENTRIES)
    sse += b'data: {"choices": [], "usage": {"prompt_tokens": 3}}\n\ndata: [DONE]\n\n'
    assert recorded_positions(json_answer) == recorded_positions(sse)
    positions = recorded_positions(json_answer)
    assert [p.token for p in positions] == ["a", "token_id:98"]
    assert top_k(positions) == 2
    assert token_texts(positions) == {"a", "b"}
    ids = token_ids(positions, {"a": 97, "b": 98})
    assert ids == [PositionLogprobs(97, -0.1, [TokenLogprob(97, -0.1), TokenLogprob(98, -2.0)]),
                   PositionLogprobs(98, -0.3, [TokenLogprob(98, -0.3), TokenLogprob(99, -1.5)])]


def test_an_unresolvable_token_or_a_malformed_entry_is_the_executors_fault():
    positions = recorded_positions(msgspec.json.encode(completion(ENTRIES)))
    with pytest.raises(PayloadError, match="not one token"):
        token_ids(positions, {"a": 97})
    with pytest.raises(PayloadError, match="malformed"):
        recorded_positions(msgspec.json.encode(completion([{"token": "a"}])))
    with pytest.raises(PayloadError, match="not JSON"):
        recorded_positions(b"data: {broken\n\n")


def test_replay_messages_take_the_text_of_each_message():
    body = msgspec.json.encode({"messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi "},
                                     {"type": "image_url", "image_url": {"url": "x"}},
                                     {"type": "text", "text": "there"}]}]})
    assert [(m.role, m.content) for m in replay_messages(body)] == [
        ("system", "be brief"), ("user", "hi there")]
    with pytest.raises(PayloadError):
        replay_messages(b'{"model": "m"}')


# -- the payload checks -----------------------------------------------------------------------


def payload(request: bytes, response: bytes, iid: bytes = b"\x01" * 64) -> Payload:
    return Payload(inference_id=iid.hex(), epoch=1, model=MODEL,
                   request=base64.b64encode(request).decode(),
                   response=base64.b64encode(response).decode(),
                   response_hash=blake3_256(response).hex(), prompt_tokens=1,
                   completion_tokens=1)


def test_a_payload_must_be_the_one_the_chain_recorded():
    request, response = b'{"messages": []}', b'{"choices": []}'
    iid = b"\x01" * 64
    good = dict(inference_id=iid, model=MODEL, prompt_hash=blake3_256(request),
                response_hash=blake3_256(response))
    assert check_payload(payload(request, response), **good) == (request, response)
    with pytest.raises(PayloadError, match="prompt_hash"):
        check_payload(payload(request + b" ", response), **good)
    with pytest.raises(PayloadError, match="response_hash"):
        check_payload(payload(request, response + b" "), **good)
    with pytest.raises(PayloadError, match="for inference"):
        check_payload(payload(request, response, b"\x02" * 64), **good)
    with pytest.raises(PayloadError, match="base64"):
        check_payload(msgspec.structs.replace(payload(request, response), request="%%"), **good)


# -- the decision -----------------------------------------------------------------------------


def record(iid: bytes, *, executor: str = B, traffic: int = 0, rep: int = 0,
           executor_power: int = 100, total_power: int = 200) -> RecordDetails:
    return RecordDetails(id=iid, executor=executor, model=MODEL, epoch=1,
                         executor_reputation=rep, traffic_basis=traffic,
                         executor_power=executor_power, total_power=total_power)


def group(**weights: int):
    members = {a: Member(a, w, (MODEL,)) for a, w in weights.items()}
    return members.get


IDS = [bytes([i]) * 64 for i in range(50)]


def test_two_hosts_at_low_traffic_the_other_host_validates_everything():
    # target = max_average = 1 expected validator; p = 1 x 100 / (200 - 100) = 1.
    members = group(**{A: 100, B: 100})
    assert all(must_validate(A, bytes(32), record(i), members, PARAMS) for i in IDS)


def test_own_inferences_and_hosts_without_the_model_or_weight_are_skipped():
    members = group(**{A: 100, B: 100})
    assert not must_validate(B, bytes(32), record(IDS[0]), members, PARAMS)
    assert not must_validate(C, bytes(32), record(IDS[0]), members, PARAMS)
    no_model = {A: Member(A, 100, ("other",)), B: Member(B, 100, (MODEL,))}.get
    assert not must_validate(A, bytes(32), record(IDS[0]), no_model, PARAMS)
    removed = group(**{A: 100, B: 0})
    assert not must_validate(A, bytes(32), record(IDS[0]), removed, PARAMS)


def test_otherwise_the_decision_is_the_chains_selection_function():
    # High traffic, a trusted executor and a large group: p is small, the seed decides.
    members = group(**{A: 10, B: 100})
    seed = bytes(range(32))
    picks = [must_validate(A, seed, record(i, traffic=20_000, rep=100, total_power=1000),
                           members, PARAMS) for i in IDS]
    expected = [should_validate(seed, i, executor_reputation=100, traffic_basis=20_000,
                                validator_power=10, executor_power=100, total_power=1000,
                                params=PARAMS) for i in IDS]
    assert picks == expected
    assert not all(picks)


# -- the score glue ---------------------------------------------------------------------------


def test_an_honest_replay_scores_a_million_ppm_and_tampering_fails():
    model = lm.MockLM(MODEL)
    prompt = lm.tokenize("<|user|>\nhello\n<|assistant|>\n")
    honest = model.generate(prompt, 16)
    k = 5
    replayed = model.replay(prompt, honest.token_ids, k)
    assert to_ppm(score([s.position(k) for s in honest.steps], replayed).similarity) == 1_000_000
    tripled = model.generate(prompt, 16, tamper="logprobs")
    ppm = to_ppm(score([s.position(k) for s in tripled.steps],
                       model.replay(prompt, tripled.token_ids, k)).similarity)
    assert ppm < 980_000
    wrong = model.generate(prompt, 16, tamper="tokens")
    assert to_ppm(score([s.position(k) for s in wrong.steps],
                        model.replay(prompt, wrong.token_ids, k)).similarity) == 0


def test_to_ppm_floors_and_clamps():
    assert to_ppm(1.0) == 1_000_000
    assert to_ppm(0.9999999) == 999_999
    assert to_ppm(0.0) == 0
    assert to_ppm(float("nan")) == 0
    assert to_ppm(1.5) == 1_000_000
    assert to_ppm(-0.1) == 0


# -- the duties -------------------------------------------------------------------------------


def test_duties_are_durable_and_known_once(tmp_path):
    store = DutyStore(tmp_path / "duties.db")
    assert store.add(IDS[0], False, 1, B)
    assert not store.add(IDS[0], False, 1, B)
    assert store.add(IDS[0], True, 1, B)   # the revalidation ballot is another duty
    assert store.add_claim(1) and not store.add_claim(1)
    store.close()
    store = DutyStore(tmp_path / "duties.db")
    assert [(d.inference_id, d.revalidation, d.state) for d in store.duties("pending")] == [
        (IDS[0], False, "pending"), (IDS[0], True, "pending")]
    store.mark_sent(IDS[0], False, 7, 0, "different tokens")
    store.mark_skipped(IDS[0], True, "the vote is over")
    assert store.duties("pending") == []
    assert store.get(IDS[0], False).message_id == 7
    assert store.pending_claims() == [1]
    store.claim_sent(1, 8)
    assert store.pending_claims() == [] and store.claim_state(1) == ("sent", 8)
    store.close()
