"""The transfer-agent path: a developer's signed request (no X-Inference-Id). Checks it, picks
an executor, forwards the original body with this node's transfer signature (or runs it here
when the executor is this host), records MsgStartInference and relays the answer verbatim.

Checks, in order, each a refusal that changes nothing on chain:
  body size (413, by the app) -> the body decodes (400) -> the model is in the effective
  epoch's snapshot (404) -> the developer's signature (401) -> its time against chain time
  (400) -> max_tokens within the chain's limit (400) -> the replay cache (400) -> balance >=
  escrow = (prompt tokens + max_tokens) x price (402) -> bandwidth (429, Retry-After) -> an
  executor (503).

Prompt tokens for the escrow and the bandwidth estimate: the body's length in bytes, an
over-estimate (a byte-level tokenizer gives at most one token per byte of text and the JSON
around the messages outweighs a chat template), so the escrow is never short and the
executor's real count, which replaces it on chain, only refunds. Only when the developer's
balance does not cover the over-estimated escrow is the prompt counted for real, by one of this
host's ML nodes serving the model (/tokenize, with the chat template, within
`tokenize_timeout_s`): a round trip the common case does not pay for. The completion limit is
max_completion_tokens, else max_tokens, else `default_max_tokens`.

MsgStartInference is queued once the executor has accepted the request (its answer's headers
are a 200): an executor that refuses (no ML node, 503) or fails (502) costs the developer
nothing, not even a temporary escrow. The Start may then reach the chain after the executor's
Finish; the chain takes them in either order.

An executor that did nothing with the request (it could not be reached, or answered 503: no ML
node, its chain node down) is passed over for another, chosen by weight among those not tried,
up to `executor_attempts` in all; the developer sees the last refusal only when every attempt
failed. Each attempt is signed for its executor; the inference id (the developer's signature)
stays the same, so the chain can never record two executions of one request. A read timeout or
a broken answer is not retried: the executor may have done the work.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import msgspec
import trio

from api.mlnodes import NoMlNode
from api.node.chain_state import ChainSnapshot
from api.node.context import ApiNode
from api.node.errors import (
    ExecutorFailed,
    InsufficientBalance,
    Replay,
    TooManyTokens,
    Unavailable,
    UnknownModel,
    parse_error_message,
)
from api.node.executor import open_execution
from api.routing import choose, eligible
from api.signing import (
    TA_SIGNATURE,
    ChatRequest,
    VerifiedRequest,
    VerifiedTransfer,
    check_timestamp,
    parse_chat_request,
    sign_transfer,
    verify_developer,
)
from chain.types.msgs import MsgStartInference
from chain.types.msgs.inference import MAX_TOKENS

log = logging.getLogger(__name__)

_ERROR_BODY_BYTES = 64 << 10


@dataclass
class Relay:
    """A response on its way to the developer: status, headers and the body: whole (a JSON
    answer, sent with its length; everything is released already) or the chunks of a stream
    (which release everything when they end)."""

    status: int
    content_type: str
    chunks: bytes | AsyncIterator[bytes]
    headers: dict[str, str]


async def handle_transfer(node: ApiNode, headers: Mapping[str, str], body: bytes) -> Relay:
    snapshot = await node.cache.current()
    chat = parse_chat_request(body)
    if snapshot.model(chat.model) is None:
        raise UnknownModel(chat.model, [m.id for m in snapshot.models])
    verified = verify_developer(headers, body, node.account)
    params = snapshot.params
    check_timestamp(verified.timestamp_ns, snapshot.time_ns, params.max_request_age_s,
                    params.max_request_advance_s)
    max_tokens = chat.token_limit or node.limits.default_max_tokens
    if max_tokens > MAX_TOKENS:
        raise TooManyTokens(max_tokens, MAX_TOKENS)
    if not node.replay.add(verified.inference_id, "transfer_agent", verified.timestamp_ns):
        raise Replay(verified.inference_id, "transfer agent")

    prompt_tokens = len(body)
    price = snapshot.prices.get(chat.model, 0)
    escrow = (prompt_tokens + max_tokens) * price
    developer = verified.requester
    available = await node.balance(developer) - node.reserved[developer]
    if available < escrow:
        messages = msgspec.json.decode(body).get("messages", [])
        counted = await node.count_prompt_tokens(chat.model, messages)
        if counted is not None:
            prompt_tokens = counted
            escrow = (prompt_tokens + max_tokens) * price
        if available < escrow:
            raise InsufficientBalance(developer, available, escrow)

    node.update_limiter(snapshot)
    node.limiter.prune(snapshot.height)
    booking = node.limiter.admit(snapshot.height, prompt_tokens, max_tokens)
    stack = AsyncExitStack()
    stack.callback(node.limiter.release, booking)
    node.reserved[developer] += escrow
    stack.callback(_unreserve, node, developer, escrow)
    try:
        candidates = eligible(snapshot.members, chat.model,
                              poc_running=snapshot.epoch.poc_running)
        for attempt in range(node.limits.executor_attempts):
            executor = choose(candidates, node.rng, chat.model,
                              snapshot.epoch.poc_running).address
            try:
                return await _attempt(node, snapshot, verified, chat, body, executor,
                                      prompt_tokens, max_tokens, stack)
            except _TryAnother as e:
                candidates = [c for c in candidates if c.address != executor]
                log.info("inference %s: executor %s did nothing (%s)%s",
                         verified.inference_id.hex()[:16], executor, e.failure,
                         "; trying another" if candidates else "")
                if not candidates or attempt + 1 == node.limits.executor_attempts:
                    raise e.failure from None
        raise AssertionError("unreachable")
    except BaseException:
        await _close(stack)
        raise


class _TryAnother(Exception):
    """The executor did nothing with the request (unreachable, or a 503): another may."""

    def __init__(self, failure: Exception) -> None:
        super().__init__(str(failure))
        self.failure = failure


async def _attempt(node: ApiNode, snapshot: ChainSnapshot, verified: VerifiedRequest,
                   chat: ChatRequest, body: bytes, executor: str, prompt_tokens: int,
                   max_tokens: int, stack: AsyncExitStack) -> Relay:
    """The request sent to `executor` (signed for it), its Start queued once it accepted."""
    developer = verified.requester
    transfer_headers = sign_transfer(node.resolved.signer, verified, executor, chat.model)
    start = MsgStartInference(
        transfer_agent=node.account, inference_id=verified.inference_id,
        requested_by=developer, requester_pubkey=verified.signature.requester_pubkey,
        executor=executor, model=chat.model, prompt_hash=verified.prompt_hash,
        prompt_tokens=prompt_tokens, max_tokens=max_tokens,
        request_timestamp_ns=verified.timestamp_ns,
        transfer_signature=_signature(transfer_headers))
    if executor == node.account:
        transfer = VerifiedTransfer(request=verified, executor=executor, model=chat.model,
                                    transfer_signature=start.transfer_signature,
                                    signed_by=node.resolved.signer.public_key, chat=chat)
        try:
            execution = await open_execution(node, transfer, body)
        except NoMlNode as e:
            raise _TryAnother(Unavailable(f"executor {executor}: {e}")) from None
        stack.push_async_callback(execution.aclose)
        node.sender.submit(start)
        if not execution.streamed:
            await _close(stack)
            return Relay(200, execution.content_type, execution.developer_body,
                         {"X-Executor-Address": executor})
        return Relay(200, execution.content_type, _relay(execution.chunks(), stack),
                     {"X-Executor-Address": executor})
    url = snapshot.participants[executor].inference_url.rstrip("/")
    response = await _forward(node, executor, f"{url}/v1/chat/completions", body,
                              {**verified.signature.headers(), **transfer_headers})
    if response.status_code != 200:
        try:
            relay = await _refusal(executor, response)
        except Unavailable as e:
            raise _TryAnother(e) from None
        finally:
            await response.aclose()
        return relay
    stack.push_async_callback(response.aclose)
    node.sender.submit(start)
    content_type = response.headers.get("content-type", "application/json")
    if not content_type.startswith("text/event-stream"):
        # A JSON answer is relayed whole, with its length: cheaper for both ends than a
        # chunked stream, and an executor that breaks off mid-body is a clean 502.
        try:
            whole = b"".join([chunk async for chunk in response.aiter_raw()])
        except httpx.HTTPError as e:
            raise ExecutorFailed(executor, f"the answer broke off: {e}") from None
        await _close(stack)
        return Relay(200, content_type, whole, {"X-Executor-Address": executor})
    return Relay(200, content_type, _relay(response.aiter_raw(), stack),
                 {"X-Executor-Address": executor})


def _signature(transfer_headers: dict[str, str]) -> bytes:
    return base64.b64decode(transfer_headers[TA_SIGNATURE])


def _unreserve(node: ApiNode, developer: str, escrow: int) -> None:
    left = node.reserved[developer] - escrow
    if left > 0:
        node.reserved[developer] = left
    else:
        node.reserved.pop(developer, None)


async def _close(stack: AsyncExitStack) -> None:
    with trio.CancelScope(shield=True):
        await stack.aclose()


async def _forward(node: ApiNode, executor: str, url: str, body: bytes,
                   headers: dict[str, str]) -> httpx.Response:
    limits = node.limits
    timeout = httpx.Timeout(limits.executor_read_timeout_s,
                            connect=limits.executor_connect_timeout_s)
    request = node.http.build_request("POST", url, content=body, timeout=timeout,
                                      headers={**headers, "Content-Type": "application/json"})
    try:
        return await node.http.send(request, stream=True)
    except (httpx.ConnectError, httpx.ConnectTimeout) as e:
        # Nothing was sent: another executor may take it.
        raise _TryAnother(ExecutorFailed(
            executor, f"{url} unreachable: {type(e).__name__}: {e}")) from None
    except httpx.HTTPError as e:
        raise ExecutorFailed(executor, f"{url} failed: {type(e).__name__}: {e}") from None


async def _refusal(executor: str, response: httpx.Response) -> Relay:
    """An executor's refusal as ours: 503 stays 503 (try again), anything else is a 502."""
    raw = b""
    try:
        async for chunk in response.aiter_bytes():
            raw += chunk
            if len(raw) > _ERROR_BODY_BYTES:
                break
    except httpx.HTTPError:
        pass
    message = parse_error_message(raw) or raw[:300].decode("utf-8", "replace")
    if response.status_code == 503:
        # The executor has no ML node for it now: the developer may simply try again.
        raise Unavailable(f"executor {executor}: {message}")
    raise ExecutorFailed(executor, f"HTTP {response.status_code}: {message}")


async def _relay(chunks: AsyncIterator[bytes], stack: AsyncExitStack) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
    except httpx.HTTPError as e:
        # Headers are out already: all that is left is to end the stream early.
        log.warning("relay ended early: %s", e)
    finally:
        await _close(stack)
