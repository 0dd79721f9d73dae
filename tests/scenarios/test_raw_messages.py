"""Acceptance scenarios: inference messages sent straight to the chain (gonka-testermint.md
section 5, items 11-13): a transfer agent's MsgStartInference counts once, any corrupted
signature is refused, and a finish may come before its start. Three participants; participant 0
acts as the transfer agent and participant 1 as the executor, signing their own messages."""

from __future__ import annotations

import base64
import time

import pytest

from api.signing import (
    AUTHORIZATION,
    TA_SIGNATURE,
    request_signature,
    sign_request,
    sign_transfer,
    verify_developer,
)
from chain.crypto.hashing import blake3_256
from chain.rpc.client import RpcError
from chain.types.inference import execution_sign_bytes, transfer_sign_bytes
from chain.types.msgs import MsgFinishInference, MsgStartInference
from testermint_py.faults import send_tx
from testermint_py.network import MODEL, Network, NetworkError
from tests.scenarios.conftest import running_network

pytestmark = pytest.mark.slow

TA, EXECUTOR = 0, 1
# The inference module's refusal per corrupted signature (chain/app/PROTOCOL.md, codes 801-803).
CODES = {"inference_id": 801, "transfer_signature": 802, "executor_signature": 803}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    with running_network(tmp_path_factory.mktemp("raw"), n=3,
                         params={"inference": {"grace_per_token_price": 10}}) as network:
        yield network


def messages(net: Network, text: str) -> tuple[MsgStartInference, MsgFinishInference]:
    """A developer's request for `text` sent through TA to EXECUTOR, as both would record it."""
    dev, ta, ex = net.developers[0], net.participants[TA], net.participants[EXECUTOR]
    body = (b'{"model": "%s", "messages": [{"role": "user", "content": "%s"}]}'
            % (MODEL.encode(), text.encode()))
    ts = time.time_ns()
    request = request_signature(dev, body, ta.account, ts)
    prompt_hash = blake3_256(body)
    transfer = ta.key.sign(transfer_sign_bytes(prompt_hash, ts, ta.account, ex.account, MODEL))
    start = MsgStartInference(
        transfer_agent=ta.account, inference_id=request.signature, requested_by=dev.address,
        requester_pubkey=dev.public_key, executor=ex.account, model=MODEL,
        prompt_hash=prompt_hash, prompt_tokens=12, max_tokens=20, request_timestamp_ns=ts,
        transfer_signature=transfer)
    response_hash = blake3_256(b"the answer")
    finish = MsgFinishInference(
        executor=ex.account, inference_id=request.signature, requested_by=dev.address,
        requester_pubkey=dev.public_key, transfer_agent=ta.account, model=MODEL,
        prompt_hash=prompt_hash, request_timestamp_ns=ts, transfer_signature=transfer,
        response_hash=response_hash, prompt_tokens=10, completion_tokens=5,
        executor_signature=ex.key.sign(execution_sign_bytes(
            prompt_hash, ts, ta.account, ex.account, MODEL, response_hash, 10, 5)))
    return start, finish


async def record(net: Network, start: MsgStartInference) -> dict:
    return await net.query("inference/inference", id=start.inference_id.hex())


def corrupt(signature: bytes) -> bytes:
    return signature[:-1] + bytes([signature[-1] ^ 1])


async def test_a_start_counts_once(net):
    start, _ = messages(net, "once")
    # The first MsgStartInference is recorded with its request time and transfer agent,
    await send_tx(net, TA, start)
    stored = await record(net, start)
    assert (stored["status"], stored["transfer_agent"], stored["request_timestamp_ns"]) == (
        "started", net.participants[TA].account, start.request_timestamp_ns)
    # and the same start again is refused.
    with pytest.raises(NetworkError) as refused:
        await send_tx(net, TA, start)
    assert "code=806" in str(refused.value)          # already has its start


@pytest.mark.parametrize("field", ["inference_id", "transfer_signature"])
async def test_a_start_with_a_corrupted_signature_is_refused(net, field):
    start, _ = messages(net, f"bad start {field}")
    bad = start.__class__(**{**{f: getattr(start, f) for f in start.__struct_fields__},
                             field: corrupt(getattr(start, field))})
    before = await net.balance(net.developers[0].address)
    with pytest.raises(NetworkError) as refused:
        await send_tx(net, TA, bad)
    assert f"code={CODES[field]}" in str(refused.value)
    assert await net.balance(net.developers[0].address) == before


@pytest.mark.parametrize("field", ["inference_id", "transfer_signature", "executor_signature"])
async def test_a_finish_with_a_corrupted_signature_is_refused(net, field):
    _, finish = messages(net, f"bad finish {field}")
    bad = finish.__class__(**{**{f: getattr(finish, f) for f in finish.__struct_fields__},
                              field: corrupt(getattr(finish, field))})
    with pytest.raises(NetworkError) as refused:
        await send_tx(net, EXECUTOR, bad)
    assert f"code={CODES[field]}" in str(refused.value)


async def test_a_finish_may_come_before_its_start(net):
    start, finish = messages(net, "finish first")
    dev = net.developers[0].address
    before = await net.balance(dev)
    # The executor's finish alone is accepted,
    await send_tx(net, EXECUTOR, finish)
    # and once the transfer agent's start follows, the inference is complete and paid for
    # with the executor's counts.
    await send_tx(net, TA, start)
    stored = await record(net, start)
    assert stored["status"] == "finished"
    assert (stored["prompt_tokens"], stored["completion_tokens"]) == (10, 5)
    assert await net.balance(dev) == before - stored["actual_cost"]


async def test_an_executor_serves_a_request_its_transfer_agent_signed(net):
    """Items 9-10: a request sent straight to the executor's API with the transfer agent's
    signature is served and finished on chain; a corrupted developer or transfer signature is
    a 401."""
    dev, ta, ex = net.developers[0], net.participants[TA], net.participants[EXECUTOR]
    body = b'{"model": "%s", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}' \
        % MODEL.encode()
    verified = verify_developer(sign_request(dev, body, ta.account, time.time_ns()), body,
                                ta.account)
    headers = {**verified.signature.headers(),
               **sign_transfer(ta.key, verified, ex.account, MODEL),
               "Content-Type": "application/json"}
    url = f"{ex.public_url}/v1/chat/completions"
    for name in (AUTHORIZATION, TA_SIGNATURE):
        bad = dict(headers)
        raw = base64.b64decode(bad[name])
        bad[name] = base64.b64encode(corrupt(raw)).decode()
        r = await net._http("POST", url, content=body, headers=bad)
        assert r.status_code == 401, (name, r.text)
    r = await net._http("POST", url, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == verified.inference_id.hex()

    async def finished() -> dict | None:
        try:
            stored = await net.query("inference/inference", id=verified.inference_id.hex())
        except RpcError:
            return None
        return stored if stored["executor"] == ex.account and stored.get(
            "response_hash") else None
    stored = await net.each_block(finished, what="the executor's finish")
    assert stored["transfer_agent"] == ta.account
