"""`ValidationWorker`: the host's inference validation duty and its reward claims
(gonka-api-node.md sections 8 and 9, with DESIGN.md's fixes). A trio service:

    worker = ValidationWorker(account=..., signer=..., sender=..., rpc=..., pool=..., seeds=...,
                              state_dir=home / "validation")
    await nursery.start(worker.run)

or, inside an API node, `serve_api(..., background=[validation_service(seeds)])`.

It follows every committed block (EventFollower: resumes after the last processed height, so no
block is skipped or handled twice across restarts) and, for each block, in order:

* `inference_finished` of an inference this host did not execute: reads the record
  (`inference/inference`), its epoch's group and the validation params, and decides with this
  host's seed for that epoch (`recorded.must_validate`, around the chain's own
  `should_validate`). A selected inference becomes a durable *duty* (duties.py);
* `inference_vote_opened`: a revalidation duty when this host is a member with weight > 0 of the
  vote's epoch (and did not open the vote itself: its ballot is in already);
* `settlement` of this account with an amount: a durable claim of that epoch.

Only then is the block marked processed. Duties are carried out concurrently (at most
`max_concurrent` at once):

1. fetch the payload from the executor's `inference_url` (`GET /v1/inference/{id}/payload`,
   signed with `api.signing.sign_payload_request`);
2. check BLAKE3(request) == prompt_hash and BLAKE3(response) == response_hash;
3. replay the executor's output tokens on one of this host's ML nodes
   (`POST /api/v1/inference/replay` with the request's messages, the output token ids and the
   executor's top-k). Executors record "token_id:N" tokens (api.node.responses asks the ML node
   for `return_tokens_as_token_ids`): those ids are replayed as they are. Recorded tokens that
   are texts (an executor that did not ask for ids) are turned into ids with the ML node's
   `/tokenize` (one id each, else the output is not this model's; exact for byte-level
   vocabularies only, hence the ids);
4. score with `chain.types.inference_scoring.score`, send MsgValidation(similarity_ppm).

Who is at fault decides what happens when something goes wrong:
* the executor: it refuses the payload request (a 4xx: no such payload, not a validator)
  `fetch_attempts` times in a row, or cannot be reached or answers 5xx for `payload_patience_s`
  (with backoff: an executor that is restarting, or whose chain node is, gets that long to come
  back), or its payload does not match the chain's hashes or cannot be read, or the replay
  refuses its output (400) -> a *failing* validation (similarity 0) is sent: an executor that
  does not serve its payload to the chosen validator cannot be checked and must not be paid for
  it (the reference sent nothing, or even 1 for "model not supported");
* this host: no ML node serves the model, or the ML node fails (not a 400) -> retried with
  backoff, without limit, never reported against the executor;
* the chain no longer takes the message (the vote resolved, the epoch is over) -> skipped.

Claims: once the validations of the claimed epoch this worker sent have settled, the amount of
`rewards/settlement` (if it is for that epoch) is claimed with the seed of the seed store (any
seed when the chain holds no commitment: then there is no validation duty and only work coins).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx
import msgspec
import trio

from api.chain.events import EventFollower
from api.chain.sender import TxSender
from api.mlnodes import MlNodePool, NoMlNode
from api.signing import sign_payload_request
from api.validation.duties import Duty, DutyStore
from api.validation.recorded import (
    Member,
    Payload,
    PayloadError,
    RecordDetails,
    ReplayMessage,
    check_payload,
    must_validate,
    recorded_positions,
    replay_messages,
    token_ids,
    token_texts,
    top_k,
)
from chain.app.inference.state import COMPLETED_STATUSES, InferenceRecord
from chain.app.validation.params import ValidationParams
from chain.crypto.secp256k1 import PrivateKey
from chain.rpc.client import RpcClient, RpcError
from chain.rpc.schema import EventFrame, FrameEvent
from chain.types.inference_scoring import PositionLogprobs, score, to_ppm
from chain.types.msgs import MsgClaimRewards, MsgValidation

log = logging.getLogger(__name__)

EVENT_TYPES = ("inference_finished", "inference_vote_opened", "settlement")
NOT_FOUND = 3  # the app's query code for an unknown key
_CHAIN_ERRORS = (RpcError, httpx.HTTPError, OSError, msgspec.DecodeError,
                 msgspec.ValidationError)


class Seeds(Protocol):
    """The host's per-epoch seeds (api.poc.seeds.SeedStore)."""

    def get(self, epoch: int) -> Any: ...   # a SeedRecord (`.seed`) or None


class ReplayAnswer(msgspec.Struct):
    positions: list[PositionLogprobs]
    prompt_tokens: int = 0


class _Tokens(msgspec.Struct):
    tokens: list[int]


class _ExecutorFault(Exception):
    """The executor is to blame: the validation fails with this reason."""


class _Retry(Exception):
    """This host cannot do it now (its ML node, the chain): try again later."""


class _Skip(Exception):
    """Nothing may be sent any more."""


class ValidationWorker:
    def __init__(self, *, account: str, signer: PrivateKey, sender: TxSender, rpc: RpcClient,
                 pool: MlNodePool, seeds: Seeds, state_dir: Path | str,
                 http: httpx.AsyncClient | None = None,
                 mlnode_headers: Callable[[str], Mapping[str, str]] | None = None,
                 fetch_attempts: int = 3, fetch_timeout_s: float = 30.0,
                 payload_patience_s: float = 60.0,
                 replay_timeout_s: float = 300.0, retry_delay: float = 0.1,
                 max_retry_delay: float = 5.0, max_concurrent: int = 4,
                 start_height: int | None = None) -> None:
        if fetch_attempts < 1:
            raise ValueError("fetch_attempts must be at least 1")
        self.account = account
        self.signer = signer
        self.sender = sender
        self.rpc = rpc
        self.pool = pool
        self.seeds = seeds
        self.state_dir = Path(state_dir)
        self._http = http
        self._mlnode_headers = mlnode_headers or (lambda node_id: {})
        self.fetch_attempts = fetch_attempts
        self.payload_patience_s = payload_patience_s
        self.fetch_timeout_s = fetch_timeout_s
        self.replay_timeout_s = replay_timeout_s
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self._limiter = trio.CapacityLimiter(max_concurrent)
        self._start_height = start_height
        self.duties: DutyStore | None = None
        self._active: set[tuple[bytes, bool]] = set()
        self._claiming: set[int] = set()
        self._wakeup = trio.Event()
        self._changed = trio.Event()
        self._cancel = trio.CancelScope()
        self._groups: dict[int, dict[str, Member]] = {}
        # Records read while learning duties, by inference id, with the block they were read
        # in: a duty carried out in that same block need not read its record again.
        self._learned: dict[bytes, tuple[int, InferenceRecord]] = {}
        # The validation params, read once per block: (the block's height, the params).
        self._params: tuple[int, ValidationParams] | None = None
        self._block_height = 0
        self._urls: dict[str, str] = {}

    # -- the service --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[ValidationWorker] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        duties = self.duties = DutyStore(self.state_dir / "duties.db")
        follower = EventFollower(self.rpc, self.state_dir / "events.db", EVENT_TYPES,
                                 name="validation", start_height=self._start_height,
                                 retry_delay=self.retry_delay,
                                 max_retry_delay=self.max_retry_delay)
        own_http = self._http is None
        http = self._http or httpx.AsyncClient(timeout=self.fetch_timeout_s)
        self._http = http
        try:
            with self._cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._perform_loop, nursery)
                    nursery.start_soon(self._claim_catch_up)
                    task_status.started(self)
                    async with follower.blocks() as blocks:
                        async for frame in blocks:
                            await self._on_block(frame)
        finally:
            if own_http:
                with trio.CancelScope(shield=True):
                    await http.aclose()
                self._http = None
            follower.close()
            duties.close()
            self.duties = None

    def stop(self) -> None:
        self._cancel.cancel()

    async def wait_duty(self, inference_id: bytes, revalidation: bool = False,
                        state: str | None = None) -> Duty:
        """Return the duty once it is known (and in `state`, when given)."""
        while True:
            changed = self._changed
            duty = self.duties.get(inference_id, revalidation) if self.duties else None
            if duty is not None and (state is None or duty.state == state):
                return duty
            await changed.wait()

    def _notify(self) -> None:
        self._wakeup.set()
        self._changed.set()
        self._changed = trio.Event()

    # -- learning duties from blocks ----------------------------------------------------------

    async def _on_block(self, frame: EventFrame) -> None:
        self._block_height = frame.height
        for event in frame.events:
            attrs = {a.key: a.value for a in event.attributes}
            if event.type == "inference_finished":
                await self._chain(self._learn_finished, attrs)
            elif event.type == "inference_vote_opened":
                await self._chain(self._learn_vote, attrs)
            elif event.type == "settlement":
                self._learn_settlement(event, attrs)

    async def _learn_finished(self, attrs: dict[str, str]) -> None:
        if attrs.get("executor") == self.account:
            return
        inference_id = bytes.fromhex(attrs["inference_id"])
        if self.duties.get(inference_id, False) is not None:
            return
        epoch = int(attrs["epoch"])
        seed = self.seeds.get(epoch)
        if seed is None:
            log.info("validation: no seed for epoch %d; inference %s not considered (this host "
                     "has no weight, hence no duty, in that epoch)", epoch, attrs["inference_id"])
            return
        record = await self._record(inference_id)
        if record is None or record.status not in COMPLETED_STATUSES:
            return
        members = await self._members(epoch)
        params = await self._validation_params()
        if must_validate(self.account, seed.seed, details(record), members.get, params):
            if self.duties.add(inference_id, False, epoch, record.executor):
                self._learned[inference_id] = (self._block_height, record)
                log.info("validation: selected inference %s of %s (epoch %d)",
                         inference_id.hex()[:16], record.executor, epoch)
                self._notify()

    async def _learn_vote(self, attrs: dict[str, str]) -> None:
        if attrs.get("opened_by") == self.account:
            return
        inference_id = bytes.fromhex(attrs["inference_id"])
        epoch = int(attrs["epoch"])
        me = (await self._members(epoch, fresh=True)).get(self.account)
        if me is None or me.weight <= 0:
            return
        record = await self._record(inference_id)
        if record is None:
            return
        if self.duties.add(inference_id, True, epoch, record.executor):
            log.info("validation: revalidating inference %s (vote opened by %s)",
                     inference_id.hex()[:16], attrs.get("opened_by"))
            self._notify()

    def _learn_settlement(self, event: FrameEvent, attrs: dict[str, str]) -> None:
        if attrs.get("participant") != self.account:
            return
        if int(attrs.get("work", 0)) + int(attrs.get("reward", 0)) > 0:
            if self.duties.add_claim(int(attrs["epoch"])):
                self._notify()

    async def _claim_catch_up(self) -> None:
        """At start: an amount settled before this worker followed the chain is claimed too."""
        answer = await self._chain(self._settlement)
        if answer is not None and answer["work"] + answer["reward"] > 0:
            if self.duties.add_claim(answer["epoch"]):
                self._notify()

    # -- carrying duties out ------------------------------------------------------------------

    async def _perform_loop(self, nursery: trio.Nursery) -> None:
        while True:
            wakeup = self._wakeup = trio.Event()
            for duty in self.duties.duties("pending"):
                key = (duty.inference_id, duty.revalidation)
                if key not in self._active:
                    self._active.add(key)
                    nursery.start_soon(self._perform, duty)
            for epoch in self.duties.pending_claims():
                if epoch not in self._claiming:
                    self._claiming.add(epoch)
                    nursery.start_soon(self._claim, epoch)
            await wakeup.wait()

    async def _perform(self, duty: Duty) -> None:
        key = (duty.inference_id, duty.revalidation)
        try:
            async with self._limiter:
                try:
                    ppm, reason = await self._evaluate(duty)
                except _Skip as e:
                    log.info("validation of %s skipped: %s", duty.inference_id.hex()[:16], e)
                    self.duties.mark_skipped(duty.inference_id, duty.revalidation, str(e))
                    self._notify()
                    return
            msg = MsgValidation(validator=self.account, inference_id=duty.inference_id,
                                similarity_ppm=ppm, revalidation=duty.revalidation)
            # No await between the two writes: the duty is handed over once (duties.py).
            message_id = self.sender.submit(msg)
            self.duties.mark_sent(duty.inference_id, duty.revalidation, message_id, ppm, reason)
            log.info("validation of %s sent: similarity %d ppm%s", duty.inference_id.hex()[:16],
                     ppm, f" ({reason})" if reason else "")
            self._notify()
        finally:
            self._active.discard(key)

    async def _evaluate(self, duty: Duty) -> tuple[int, str]:
        """(similarity_ppm, why it failed or ""), retrying what is this host's problem."""
        delay = self.retry_delay
        learned = self._learned.pop(duty.inference_id, None)
        while True:
            try:
                if learned is not None and learned[0] == self._block_height:
                    record = learned[1]  # read in this block already: nothing can have changed
                else:
                    record = await self._record(duty.inference_id)
                learned = None
                if record is None:
                    raise _Skip("the record is gone (pruned)")
                if duty.revalidation and record.status != "voting":
                    raise _Skip(f"the vote is over (status {record.status})")
                if not duty.revalidation and record.status not in COMPLETED_STATUSES:
                    raise _Skip(f"status {record.status}")
                try:
                    return await self._validate(record), ""
                except _ExecutorFault as e:
                    log.warning("validation of %s fails: %s", duty.inference_id.hex()[:16], e)
                    return 0, str(e)
            except (_Retry, *_CHAIN_ERRORS) as e:
                log.warning("validation of %s: %s; retrying in %.2f s",
                            duty.inference_id.hex()[:16], e, delay)
            # Pacing a retry, not waiting for a state.
            await trio.sleep(delay)
            delay = min(delay * 2, self.max_retry_delay)

    async def _validate(self, record: InferenceRecord) -> int:
        payload = await self._fetch(record)
        try:
            request, response = check_payload(
                payload, inference_id=record.id, model=record.model,
                prompt_hash=record.prompt_hash, response_hash=record.response_hash)
            recorded = recorded_positions(response)
            messages = replay_messages(request)
        except PayloadError as e:
            raise _ExecutorFault(str(e)) from None
        try:
            async with self.pool.lease(record.model) as node:
                headers = dict(self._mlnode_headers(node.node_id))
                texts = {t: await self._token_id(node.url, headers, record.model, t)
                         for t in sorted(token_texts(recorded))}
                try:
                    original = token_ids(recorded, texts)
                except PayloadError as e:
                    raise _ExecutorFault(str(e)) from None
                replayed = await self._replay(node.url, headers, record.model, messages,
                                              [p.token_id for p in original], top_k(recorded))
        except NoMlNode as e:
            raise _Retry(str(e)) from None
        result = score(original, replayed.positions)
        if result.reason is not None:
            log.info("inference %s: %s", record.id.hex()[:16], result.reason)
        return to_ppm(result.similarity)

    async def _fetch(self, record: InferenceRecord) -> Payload:
        """The executor's payload; _ExecutorFault after `fetch_attempts` refusals in a row, or
        when it has been unreachable (or answering 5xx) for `payload_patience_s`."""
        delay = self.retry_delay
        first = trio.current_time()
        refusals = attempt = 0
        while True:
            attempt += 1
            try:
                url = await self._executor_url(record.executor)
                headers = sign_payload_request(self.signer, record.id, self.account,
                                               time.time_ns())
                with trio.fail_after(self.fetch_timeout_s):
                    r = await self._http.get(f"{url}/v1/inference/{record.id.hex()}/payload",
                                             headers=headers)
                if r.status_code == 200:
                    try:
                        return msgspec.json.decode(r.content, type=Payload)
                    except (msgspec.DecodeError, msgspec.ValidationError) as e:
                        raise _ExecutorFault(f"the payload does not decode: {e}") from None
                last = f"HTTP {r.status_code}: {r.text[:200]}"
                refused = 400 <= r.status_code < 500 and r.status_code not in (408, 429)
            except (httpx.HTTPError, OSError, trio.TooSlowError) as e:
                last = f"{type(e).__name__}: {e}"
                refused = False
            refusals = refusals + 1 if refused else 0
            log.info("payload of %s from %s, attempt %d: %s", record.id.hex()[:16],
                     record.executor, attempt, last)
            if refusals >= self.fetch_attempts:
                raise _ExecutorFault(f"the executor refused the payload {refusals} times "
                                     f"(last: {last})")
            waited = trio.current_time() - first
            if not refused and waited >= self.payload_patience_s:
                raise _ExecutorFault(f"the executor did not serve the payload in {waited:.0f} s "
                                     f"({attempt} attempts; last: {last})")
            await trio.sleep(delay)  # pacing a retry, not waiting for a state
            delay = min(delay * 2, self.max_retry_delay)

    async def _token_id(self, url: str, headers: dict[str, str], model: str, text: str) -> int:
        body = {"model": model, "prompt": text, "add_special_tokens": False}
        r = await self._post(f"{url}/tokenize", headers, body)
        ids = msgspec.json.decode(r.content, type=_Tokens).tokens
        if len(ids) != 1:
            raise _ExecutorFault(f"recorded token {text!r} is {len(ids)} tokens of this model")
        return ids[0]

    async def _replay(self, url: str, headers: dict[str, str], model: str,
                      messages: list[ReplayMessage], output: list[int], k: int) -> ReplayAnswer:
        body = {"model": model, "messages": msgspec.to_builtins(messages),
                "output_token_ids": output, "top_k": k}
        r = await self._post(f"{url}/api/v1/inference/replay", headers, body)
        try:
            return msgspec.json.decode(r.content, type=ReplayAnswer)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise _Retry(f"the ML node's replay answer does not decode: {e}") from None

    async def _post(self, url: str, headers: dict[str, str], body: object) -> httpx.Response:
        try:
            with trio.fail_after(self.replay_timeout_s):
                r = await self._http.post(url, content=msgspec.json.encode(body),
                                          headers={"Content-Type": "application/json",
                                                   **headers})
        except (httpx.HTTPError, OSError, trio.TooSlowError) as e:
            raise _Retry(f"ML node {url}: {type(e).__name__}: {e}") from None
        if r.status_code == 400:
            # The model refuses the executor's output (unknown ids, too long): not our fault.
            raise _ExecutorFault(f"the ML node refuses the output: {r.text[:200]}")
        if r.status_code != 200:
            raise _Retry(f"ML node {url} answered {r.status_code}: {r.text[:200]}")
        return r

    # -- claims -------------------------------------------------------------------------------

    async def _claim(self, epoch: int) -> None:
        try:
            # Validations of the epoch first: the claim is refused while one is missing.
            for duty in self.duties.duties("sent"):
                if duty.epoch == epoch and not duty.revalidation and duty.message_id:
                    await self.sender.wait_settled(duty.message_id)
            answer = await self._chain(self._settlement)
            if answer is None or answer["epoch"] != epoch:
                log.info("rewards of epoch %d: nothing to claim (%s)", epoch, answer)
                self.duties.claim_sent(epoch, None)
                return
            record = self.seeds.get(epoch)
            if record is None and answer.get("seed_commitment"):
                log.error("rewards of epoch %d: the seed committed for it is lost; they cannot "
                          "be claimed", epoch)
                self.duties.claim_sent(epoch, None)
                return
            seed = record.seed if record is not None else bytes(32)
            message_id = self.sender.submit(MsgClaimRewards(participant=self.account,
                                                            epoch=epoch, seed=seed))
            self.duties.claim_sent(epoch, message_id)
            log.info("rewards of epoch %d claimed (work %s, reward %s)", epoch, answer["work"],
                     answer["reward"])
            self._notify()
        finally:
            self._claiming.discard(epoch)

    async def _settlement(self) -> dict | None:
        try:
            return await self.rpc.query("rewards/settlement", address=self.account)
        except RpcError as e:
            if e.app_code == NOT_FOUND:
                return None
            raise

    # -- chain reads --------------------------------------------------------------------------

    async def _chain(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """`fn(*args)` until the chain answers."""
        delay = self.retry_delay
        while True:
            try:
                return await fn(*args)
            except _CHAIN_ERRORS as e:
                log.warning("validation: chain read failed (%s); retrying in %.2f s", e, delay)
            await trio.sleep(delay)  # pacing a retry, not waiting for a state
            delay = min(delay * 2, self.max_retry_delay)

    async def _record(self, inference_id: bytes) -> InferenceRecord | None:
        try:
            return await self.rpc.query("inference/inference", id=inference_id.hex(),
                                        as_type=InferenceRecord)
        except RpcError as e:
            if e.app_code == NOT_FOUND:
                return None
            raise

    async def _validation_params(self) -> ValidationParams:
        if self._params is None or self._params[0] != self._block_height:
            params = await self.rpc.query("params/validation", as_type=ValidationParams)
            self._params = (self._block_height, params)
        return self._params[1]

    async def _members(self, epoch: int, *, fresh: bool = False) -> dict[str, Member]:
        if fresh or epoch not in self._groups:
            answer = await self.rpc.query("epochs/group", epoch=str(epoch))
            self._groups[epoch] = {m["address"]: msgspec.convert(m, Member, strict=False)
                                   for m in answer["members"]}
        return self._groups[epoch]

    async def _executor_url(self, executor: str) -> str:
        if executor not in self._urls:
            answer = await self.rpc.query("participants/participant", address=executor)
            self._urls[executor] = answer["inference_url"].rstrip("/")
        return self._urls[executor]


def details(record: InferenceRecord) -> RecordDetails:
    return RecordDetails(id=record.id, executor=record.executor, model=record.model,
                         epoch=record.epoch, executor_reputation=record.executor_reputation,
                         traffic_basis=record.traffic_basis,
                         executor_power=record.executor_power, total_power=record.total_power)


def validation_service(seeds: Seeds, **options: Any
                       ) -> Callable[..., Awaitable[None]]:
    """A `serve_api` background service running a ValidationWorker for the node's account,
    with its signer, sender, RPC client, ML-node pool and HTTP client, state under
    `<state_dir>/validation`."""

    async def service(node: Any, *, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED
                      ) -> None:
        worker = worker_for(node, seeds, **options)
        await worker.run(task_status=task_status)

    return service


def worker_for(node: Any, seeds: Seeds, **options: Any) -> ValidationWorker:
    """A ValidationWorker over an ApiNode's parts."""
    return ValidationWorker(account=node.account, signer=node.resolved.signer,
                            sender=node.sender, rpc=node.rpc, pool=node.pool, seeds=seeds,
                            state_dir=node.resolved.state_dir / "validation", http=node.http,
                            mlnode_headers=node.mlnode_headers, **options)
