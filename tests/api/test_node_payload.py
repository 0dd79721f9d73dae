"""`GET /v1/inference/{id}/payload`: an executor hands the request and response it served to the
inference's validators, and to no one else.

The network is test_node_inference's (two chain nodes, each host's API node with a mock ML node,
both hosts members of epoch 1 with weight 100; host 1's API node signs with a warm key), started
once for this module: about 8 s. One inference is served with host 0 as its executor; then
host 1, a validator of epoch 1, asks for its payload in every way a request can be right or
wrong. Public interfaces only: HTTP to the API nodes, txs and queries to the chain RPC.
"""

from __future__ import annotations

import base64
import time

import httpx
import pytest

from api.signing import sign_payload_request
from chain.crypto.hashing import blake3_256
from chain.types.msgs import MsgGrant, MsgSend
from tests.api.test_node_inference import (
    DEV,
    HOSTS,
    MESSAGES,
    MODEL,
    WARM,
    Captured,
    Network,
    developer_client,
    finished_record,
    rpc,
    steer,
)

VALIDATION_TAG = "validation/MsgValidation"


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    net = Network(tmp_path_factory.mktemp("api-node-payload"))
    net.start()
    yield net
    net.stop()


async def serve_one(net: Network, ta: int, executor: int) -> tuple[str, bytes, dict]:
    """An inference sent to host `ta`, executed by host `executor`: (id hex, the request body
    as the developer sent it, the chain's finished record)."""
    captured = Captured()
    client = developer_client(net, ta, event_hooks={"request": [captured]})
    steer(net, ta, executor)
    try:
        reply = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                     max_tokens=12)
    finally:
        steer(net, ta, None)
    [request] = captured.requests
    record = await finished_record(net, reply.id)
    assert record["executor"] == net.hosts[executor].address
    return reply.id, request.content, record


async def get_payload(net: Network, host: int, inference_id: str, headers: dict[str, str]
                      ) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(f"{net.hosts[host].public_url}/v1/inference/{inference_id}/payload",
                              headers=headers)


def signed(key, inference_id: str, validator: str | None = None, *,
           age_s: float = 0.0) -> dict[str, str]:
    return sign_payload_request(key, bytes.fromhex(inference_id), validator or key.address,
                                time.time_ns() - int(age_s * 1e9))


def refusal(r: httpx.Response) -> tuple[int, str]:
    error = r.json()["error"]
    assert error["message"] and error["type"]
    return r.status_code, error["code"]


async def test_the_executor_hands_the_payload_to_a_validator_of_the_epoch(network):
    # Given an inference host 0 executed,
    inference_id, body, record = await serve_one(network, ta=0, executor=0)
    # when host 1, a member of epoch 1, asks host 0 for it, signed with its account key,
    r = await get_payload(network, 0, inference_id, signed(HOSTS[1], inference_id))
    # then it gets the developer's body byte for byte and the response the chain's hash covers.
    assert r.status_code == 200, r.text
    payload = r.json()
    assert payload["inference_id"] == inference_id
    assert (payload["epoch"], payload["model"]) == (1, MODEL)
    assert base64.b64decode(payload["request"]) == body
    response = base64.b64decode(payload["response"])
    assert base64.b64encode(blake3_256(response)).decode() == record["response_hash"]
    assert payload["response_hash"] == blake3_256(response).hex()
    assert (payload["prompt_tokens"], payload["completion_tokens"]) == (
        record["prompt_tokens"], record["completion_tokens"])


async def test_a_warm_key_may_ask_once_granted_validation(network):
    # (Host 1 serving one itself puts its warm key's public key on chain, where validators'
    # keys are looked up.)
    await serve_one(network, ta=1, executor=1)
    inference_id, _, _ = await serve_one(network, ta=0, executor=0)
    # Host 1's warm key holds the inference grants only: not a validator's key yet
    r = await get_payload(network, 0, inference_id, signed(WARM, inference_id, HOSTS[1].address))
    assert refusal(r) == (401, "invalid_signature")
    # until host 1 grants it MsgValidation; then its signature speaks for host 1.
    async with rpc(network) as c:
        await Network._send(c, (HOSTS[1], MsgGrant(
            granter=HOSTS[1].address, grantee=WARM.address, msg_types=(VALIDATION_TAG,),
            expiration_height=None)))
    r = await get_payload(network, 0, inference_id, signed(WARM, inference_id, HOSTS[1].address))
    assert r.status_code == 200, r.text
    assert r.json()["inference_id"] == inference_id


async def test_everyone_else_is_refused_in_openais_error_shape(network):
    inference_id, _, _ = await serve_one(network, ta=0, executor=0)
    # (The developer sends a tx, so that the chain knows its key and only membership is amiss.)
    async with rpc(network) as c:
        await Network._send(c, (DEV, MsgSend(from_address=DEV.address,
                                             to_address=HOSTS[0].address, amount=1)))
    other_id = "ab" * 64
    cases = {
        # no signature at all
        "unsigned": (0, inference_id, {}, (401, "missing_signature")),
        # the developer signing as host 1
        "forged": (0, inference_id, signed(DEV, inference_id, HOSTS[1].address),
                   (401, "invalid_signature")),
        # host 1's signature over another inference's id
        "other id": (0, inference_id, signed(HOSTS[1], other_id) | {
            "X-Validator-Address": HOSTS[1].address}, (401, "invalid_signature")),
        # signed an hour ago: outside the chain's window (300 s)
        "stale": (0, inference_id, signed(HOSTS[1], inference_id, age_s=3600),
                  (401, "request_too_old")),
        # a correctly signed request by an account that is not in epoch 1's group
        "not a member": (0, inference_id, signed(DEV, inference_id),
                         (403, "not_a_validator")),
        # an id this node never executed, and one the other host (not its executor) lacks
        "unknown id": (0, other_id, signed(HOSTS[1], other_id), (404, "not_found")),
        "not the executor": (1, inference_id, signed(HOSTS[0], inference_id),
                             (404, "not_found")),
        "not an id": (0, "xyz", signed(HOSTS[1], inference_id), (400, "bad_inference_id")),
    }
    for name, (host, asked, headers, expected) in cases.items():
        r = await get_payload(network, host, asked, headers)
        assert refusal(r) == expected, (name, r.text)
