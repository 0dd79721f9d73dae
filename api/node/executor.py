"""The executor path: a request a transfer agent forwarded (X-Inference-Id present), or one this
node chose itself for as TA. Runs it on one of this host's ML nodes and streams the answer back;
once the answer is complete, records it (payload store) and sends MsgFinishInference.

Steps (gonka-api-node.md 1.5, with the fixes of DESIGN.md section 6):
  1. verify the developer's and the TA's signatures (the TA's account key or a warm key it
     granted MsgStartInference), the request time against chain time, and this node's replay
     cache for the executor role (the HTTP handler; `open_execution` for an in-process TA);
  2. lease an ML node serving the model (503 when none), held until the answer is complete;
  3. POST the ML node's /v1/chat/completions with the recording additions (responses.py), with
     a connect and a read timeout; an error or a non-200 answer is a 502 with its reason;
  4. stream the developer's view back, keep the recorded bytes (logprob tokens as ids, asked
     with `return_tokens_as_token_ids`: that is what validators replay); the developer's
     logprob tokens are texts again, through the ML node's /detokenize (distinct ids only,
     concurrently, remembered for the rest of the answer; none when it did not ask for
     logprobs: they are stripped); at the end, count tokens
     (usage; else /tokenize for the prompt and the logprob entries for the completion), store
     the payload, sign the execution bytes and queue MsgFinishInference.
A developer who hangs up mid-stream gets no Finish (the record expires and the escrow returns).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack

import httpx
import msgspec
import trio

from api.mlnodes import MlNodeLease
from api.node.context import ApiNode, tokenize
from api.node.errors import MlNodeFailed, parse_error_message
from api.node.responses import (
    DeveloperAsked,
    Recorded,
    ResponseError,
    SseRecorder,
    developer_asked,
    developer_json,
    developer_token_ids,
    ml_request_body,
    parse_json,
)
from api.node.stores import StoredPayload
from api.signing import VerifiedTransfer
from chain.crypto.hashing import blake3_256
from chain.types.inference import execution_sign_bytes
from chain.types.msgs import MsgFinishInference

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 4 << 20
_ERROR_BODY_BYTES = 64 << 10


class Execution:
    """An ML node's answer being relayed: `content_type` and `chunks()` (the developer's bytes;
    the record and the Finish happen when the answer is complete). `aclose` releases the ML node
    and the connection (`chunks` does it when it ends)."""

    def __init__(self, node: ApiNode, transfer: VerifiedTransfer, body: bytes,
                 lease: MlNodeLease, response: httpx.Response, stack: AsyncExitStack,
                 asked: DeveloperAsked) -> None:
        self.node = node
        self.transfer = transfer
        self.body = body
        self.lease = lease
        self.response = response
        self.stack = stack
        self.asked = asked
        content_type = response.headers.get("content-type", "application/json")
        self.streamed = content_type.startswith("text/event-stream")
        self.content_type = content_type
        self.finish_message_id: int | None = None
        self._developer = b""
        self._texts: dict[int, str] = {}
        self._detokenize = True  # off after a timeout: the rest of a stream is not held up

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await self.stack.aclose()

    @property
    def developer_body(self) -> bytes:
        """A JSON answer's bytes for the developer (read, recorded and released already)."""
        assert not self.streamed, "a stream has no whole body"
        return self._developer

    async def read_whole(self) -> None:
        """A JSON answer is read, checked and recorded before anything is sent: an answer that
        is not a chat completion is then still a clean 502 (MlNodeFailed)."""
        try:
            raw = await self.response.aread()
            recorded, obj = parse_json(raw, self.transfer.inference_id.hex())
        except (httpx.HTTPError, ResponseError) as e:
            raise MlNodeFailed(self.lease.node_id, str(e)) from None
        texts = await self._token_texts(developer_token_ids(obj, self.asked))
        self._developer = developer_json(obj, self.asked, texts)
        await self._record(recorded)
        await self.aclose()  # the ML node is free as soon as its answer is in

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            if not self.streamed:
                yield self._developer
                return
            recorder = SseRecorder(self.transfer.inference_id.hex(), self.asked)
            try:
                async for line in _lines(self.response):
                    taken = recorder.take(line)
                    texts = await self._token_texts(taken.token_ids)
                    out = recorder.render(taken, texts)
                    if out is not None:
                        yield out + b"\n"
            except (httpx.HTTPError, ResponseError) as e:
                # The status is out already: all that is left is to end the stream early,
                # unrecorded (no Finish: the record expires and the escrow goes back).
                log.warning("inference %s: the ML node's stream broke off: %s",
                            self.transfer.inference_id.hex()[:16], e)
                return
            await self._record(recorder.recorded())
        finally:
            await self.aclose()

    async def _token_texts(self, ids: Iterable[int]) -> dict[int, str]:
        """The texts of token ids (the ML node's /detokenize, one call per id not seen before
        in this answer, concurrently). An id whose text cannot be had stays "token_id:N" in
        the developer's view (vLLM's own form); the record does not depend on it."""
        missing = [i for i in ids if i not in self._texts]
        if missing and self._detokenize:
            headers = self.node.mlnode_headers(self.lease.node_id)

            async def one(token_id: int) -> None:
                try:
                    text = await detokenize(self.node.http, self.lease.url, headers,
                                            self.transfer.model, [token_id])
                except (httpx.HTTPError, OSError, msgspec.DecodeError,
                        msgspec.ValidationError) as e:
                    text = None
                    log.warning("inference %s: detokenize failed: %s",
                                self.transfer.inference_id.hex()[:16], e)
                if text is not None:
                    self._texts[token_id] = text

            with trio.move_on_after(self.node.limits.tokenize_timeout_s) as scope:
                async with trio.open_nursery() as nursery:
                    for token_id in missing:
                        nursery.start_soon(one, token_id)
            if scope.cancelled_caught:
                self._detokenize = False
                log.warning("inference %s: detokenize timed out; logprob tokens stay ids",
                            self.transfer.inference_id.hex()[:16])
        return self._texts

    async def _record(self, recorded: Recorded) -> None:
        usage = recorded.usage
        if usage is not None:
            prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
        else:
            # No usage (some servers omit it): the prompt counted by the ML node's tokenizer,
            # the completion by its logprob entries (one per generated token).
            messages = msgspec.json.decode(self.body).get("messages", [])
            prompt = None
            with trio.move_on_after(self.node.limits.tokenize_timeout_s):
                try:
                    prompt = await tokenize(self.node.http, self.lease.url,
                                            self.node.mlnode_headers(self.lease.node_id),
                                            self.transfer.model, messages)
                except (httpx.HTTPError, OSError, msgspec.DecodeError) as e:
                    log.warning("inference %s: tokenize failed: %s",
                                self.transfer.inference_id.hex()[:16], e)
            if prompt is None:
                log.error("inference %s: no usage and no token count; no MsgFinishInference "
                          "(the record will expire)", self.transfer.inference_id.hex()[:16])
                return
            prompt_tokens, completion_tokens = prompt, recorded.logprob_tokens
        response_hash = blake3_256(recorded.response)
        snapshot = self.node.cache.snapshot
        epoch = snapshot.epoch.effective_epoch if snapshot is not None else 0
        t = self.transfer
        r = t.request
        self.node.payloads.put(StoredPayload(
            inference_id=t.inference_id, epoch=epoch, model=t.model, request=self.body,
            response=recorded.response, streamed=self.streamed, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, response_hash=response_hash))
        signature = self.node.resolved.signer.sign(execution_sign_bytes(
            r.prompt_hash, r.timestamp_ns, r.transfer_agent, t.executor, t.model, response_hash,
            prompt_tokens, completion_tokens))
        self.finish_message_id = self.node.sender.submit(MsgFinishInference(
            executor=t.executor, inference_id=t.inference_id, requested_by=r.requester,
            requester_pubkey=r.signature.requester_pubkey, transfer_agent=r.transfer_agent,
            model=t.model, prompt_hash=r.prompt_hash, request_timestamp_ns=r.timestamp_ns,
            transfer_signature=t.transfer_signature, response_hash=response_hash,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            executor_signature=signature))


async def open_execution(node: ApiNode, transfer: VerifiedTransfer, body: bytes) -> Execution:
    """Steps 2-3: an ML node leased and its answer's headers in. Raises NoMlNode (503) or
    MlNodeFailed (502); nothing is held then."""
    limits = node.limits
    asked = developer_asked(body)
    max_tokens = transfer.chat.token_limit or limits.default_max_tokens
    ml_body = ml_request_body(body, top_logprobs=max(limits.record_top_logprobs,
                                                     asked.top_logprobs),
                              max_tokens=max_tokens)
    stack = AsyncExitStack()
    try:
        lease = await stack.enter_async_context(node.pool.lease(transfer.model))
        timeout = httpx.Timeout(limits.mlnode_read_timeout_s,
                                connect=limits.mlnode_connect_timeout_s)
        request = node.http.build_request("POST", f"{lease.url}/v1/chat/completions",
                                          content=ml_body, timeout=timeout,
                                          headers=node.mlnode_headers(lease.node_id))
        try:
            response = await node.http.send(request, stream=True)
        except httpx.HTTPError as e:
            raise MlNodeFailed(lease.node_id, f"{type(e).__name__}: {e}") from None
        stack.push_async_callback(response.aclose)
        if response.status_code != 200:
            raw = b""
            async for chunk in response.aiter_bytes():
                raw += chunk
                if len(raw) > _ERROR_BODY_BYTES:
                    break
            message = parse_error_message(raw) or raw[:300].decode("utf-8", "replace")
            raise MlNodeFailed(lease.node_id, f"HTTP {response.status_code}: {message}")
        execution = Execution(node, transfer, body, lease, response, stack, asked)
        if not execution.streamed:
            await execution.read_whole()
        return execution
    except BaseException:
        with trio.CancelScope(shield=True):
            await stack.aclose()
        raise


class _Detokenized(msgspec.Struct):
    prompt: str


async def detokenize(http: httpx.AsyncClient, url: str, headers: Mapping[str, str], model: str,
                     ids: list[int]) -> str | None:
    """The text of token ids (vLLM's /detokenize); None when the ML node refuses."""
    response = await http.post(f"{url}/detokenize", headers=headers,
                               content=msgspec.json.encode({"model": model, "tokens": ids}))
    if response.status_code != 200:
        return None
    return msgspec.json.decode(response.content, type=_Detokenized).prompt


async def _lines(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body's lines without their b"\\n" (a last unterminated line too)."""
    buffer = b""
    async for chunk in response.aiter_bytes():
        buffer += chunk
        while True:
            cut = buffer.find(b"\n")
            if cut < 0:
                break
            line, buffer = buffer[:cut], buffer[cut + 1:]
            yield line
        if len(buffer) > MAX_LINE_BYTES:
            raise ResponseError(f"an SSE line longer than {MAX_LINE_BYTES} bytes")
    if buffer:
        yield buffer
