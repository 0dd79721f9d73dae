"""`TxSender`: takes messages from the `Outbox` to the chain, until each is included or
definitely rejected (DESIGN.md section 6).

One loop, woken by new blocks (the RPC event stream, used as a clock, which also gives the
height), by `submit` (after `batch_window_s`, so that messages submitted together share a tx),
or by its own backoff timer. Each round takes the chain height from the block stream (or from
`status` when the stream is down, and always in the first round, which also checks the chain
id), then:

1. observes every tx in flight that a block may have included since it was last looked at (a
   tx answered at height h cannot be found before h + 1, so rounds between blocks skip it):
   found in a block -> its messages settle (included; or, when it
   failed, rejected if it held one message, and queued again one per tx if it held several,
   since a failed tx has no effect); not found and the chain is past its timeout height -> the
   chain can never include it, its messages are queued for a fresh tx; otherwise, if the node
   has not acknowledged it since this sender started, the *same* signed bytes are offered again
   (after a restart or a lost answer; the node says "duplicate" if it has them already);
2. batches queued messages (up to `max_msgs_per_tx`, a message marked solo alone) into a tx for
   `chain_id`, valid until `height + timeout_blocks`, with a unique memo; signs it with the
   signer key (wrapping each message in authz MsgExec when the signer is a warm key acting for
   `account`); records it in the outbox (durably, *before* sending); broadcasts it in sync mode.

What check_tx says decides what happens:
    OK, duplicate                       -> in flight; wait for a block
    mempool full, sender quota, node    -> transient: keep it, retry with backoff
      not ready, RPC unreachable/5xx
    timeout height passed or too far    -> requeue for a fresh tx (and back off)
    wrong chain id                      -> WrongChain: this sender is misconfigured, it stops
    anything else (decode, signature,   -> the message is bad: a lone message is rejected with
      size, a module's error)              the log; a batch is split into one tx per message,
                                           so only the bad one is rejected
That table is for a tx signed this round. A tx offered before (earlier, or before a restart) may
sit in some node's mempool and still be included, so a refusal of it settles nothing: only its
inclusion, or the chain passing its timeout height, does.

Results: `wait_settled(id)` for one message, or a `results` memory channel that receives a
`Settlement` for every message that settles (sending blocks the loop: back-pressure on purpose).

This module must never drop a message, send a message in two different txs that could both be
included, or retry a broadcast that the chain refused for the message's own fault.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Literal

import httpx
import msgspec
import trio

from api.chain.outbox import Outbox, OutboxEntry, PendingTx
from chain.app.abci import (
    ERR_CHAIN_ID,
    ERR_DECODE,
    ERR_DUPLICATE,
    ERR_INTERNAL,
    ERR_MEMPOOL_FULL,
    ERR_SENDER_QUOTA,
    ERR_TIMEOUT,
    ERR_TOO_LARGE,
    OK,
)
from chain.crypto import secp256k1
from chain.rpc.client import RpcClient, RpcError
from chain.types.codec import MAX_TX_BYTES, encode
from chain.types.msgs import BaseMsg, MsgExec
from chain.types.tx import MAX_TX_MSGS, TxBody, sign_tx

log = logging.getLogger(__name__)

# An event type no module emits: frames then carry only their height, which is all the clock needs.
HEIGHTS_ONLY = ("api.chain.heights-only",)

# Refusals that say nothing about the message: the node is busy or not ready.
_TRANSIENT_CODES = frozenset({ERR_MEMPOOL_FULL, ERR_SENDER_QUOTA})


class ChainClientError(Exception):
    """The chain client cannot go on without an operator's fix."""


class WrongChain(ChainClientError):
    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"the sender signs for chain {expected!r}, the node is on {got!r}")
        self.expected, self.got = expected, got


class UnknownMessage(KeyError):
    def __init__(self, message_id: int) -> None:
        super().__init__(f"no message {message_id} in the outbox")
        self.message_id = message_id


class _Transient(Exception):
    """This round cannot go on (the node is unreachable or busy); retry after a backoff."""


class Settlement(msgspec.Struct, frozen=True):
    """The chain's final word on one message: included (code 0) or rejected with its log."""

    message_id: int
    state: Literal["included", "rejected"]
    code: int
    log: str
    tx_hash: str | None  # hex; None when refused before any tx carried it
    height: int | None  # the block that included the tx, when there is one


class SenderHealth(msgspec.Struct, frozen=True):
    """Whether the last round reached the chain; what went wrong otherwise."""

    ok: bool = True
    consecutive_failures: int = 0
    last_error: str = ""


def settlement_of(entry: OutboxEntry) -> Settlement:
    if not entry.settled:
        raise ValueError(f"message {entry.id} is {entry.state}, not settled")
    return Settlement(message_id=entry.id, state=entry.state,  # type: ignore[arg-type]
                      code=entry.result_code if entry.result_code is not None else -1,
                      log=entry.last_error,
                      tx_hash=None if entry.tx_hash is None else entry.tx_hash.hex(),
                      height=entry.height)


class TxSender:
    def __init__(self, rpc: RpcClient, outbox: Outbox, signer_key: secp256k1.PrivateKey,
                 account: str, *, chain_id: str, max_msgs_per_tx: int = 16,
                 timeout_blocks: int = 30, max_txs_in_flight: int = 16,
                 retry_delay: float = 0.05, max_retry_delay: float = 5.0,
                 idle_poll_s: float = 5.0, batch_window_s: float = 0.05,
                 results: trio.MemorySendChannel[Settlement] | None = None) -> None:
        if not 1 <= max_msgs_per_tx <= MAX_TX_MSGS:
            raise ValueError(f"max_msgs_per_tx must be in [1, {MAX_TX_MSGS}]")
        if timeout_blocks < 1 or max_txs_in_flight < 1:
            raise ValueError("timeout_blocks and max_txs_in_flight must be at least 1")
        self.rpc = rpc
        self.outbox = outbox
        self.account = account
        self.chain_id = chain_id
        self.max_msgs_per_tx = max_msgs_per_tx
        self.timeout_blocks = timeout_blocks
        self.max_txs_in_flight = max_txs_in_flight
        self._key = signer_key
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        # Without new blocks or submits (the event stream is down), look again this often.
        self._idle_poll_s = idle_poll_s
        self._results = results
        # Pending txs whose last offer got an answer that needs no repeat (check_tx OK or
        # duplicate, or a refusal of a tx some node may hold already); any other pending tx is
        # offered again, byte for byte, in the next round.
        self._answered: set[bytes] = set()
        # The height each answered tx was last looked up at (or offered at): not looked up
        # again before a later block.
        self._looked_at: dict[bytes, int] = {}
        # The latest height the block stream announced; None while it is down.
        self._stream_height: int | None = None
        self._chain_checked = False
        self._batch_window_s = batch_window_s
        self._submitted = trio.Event()
        self._wakeup = trio.Event()
        self._settled = trio.Event()
        self._health_changed = trio.Event()
        self.health = SenderHealth()

    @property
    def signer_address(self) -> str:
        return self._key.address

    # -- the callers' side ----------------------------------------------------------------------

    def submit(self, msg: BaseMsg) -> int:
        """Put `msg` in the outbox (durably) and wake the loop; the message's id."""
        message_id = self.outbox.put(msg)
        self._wake_for_submit()
        return message_id

    def submit_many(self, msgs: Sequence[BaseMsg]) -> list[int]:
        ids = self.outbox.put_many(msgs)
        self._wake_for_submit()
        return ids

    async def wait_settled(self, message_id: int) -> Settlement:
        """Wait until message `message_id` is included or rejected; raises UnknownMessage."""
        while True:
            settled = self._settled
            entry = self.outbox.get(message_id)
            if entry is None:
                raise UnknownMessage(message_id)
            if entry.settled:
                return settlement_of(entry)
            await settled.wait()

    async def wait_health(self, ok: bool) -> SenderHealth:
        """Return once the sender's last round reached the chain (`ok`) or failed (not `ok`)."""
        while self.health.ok != ok:
            await self._health_changed.wait()
        return self.health

    # -- the service ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[TxSender] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Send until cancelled. Starts at once, whether or not the chain is reachable; raises
        WrongChain if the node is on another chain."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow_heights)
            nursery.start_soon(self._coalesce_submits)
            task_status.started(self)
            await self._loop()

    async def _loop(self) -> None:
        delay = self._retry_delay
        while True:
            wakeup = self._wakeup = trio.Event()
            try:
                await self._round()
            except _Transient as e:
                self._set_health(False, str(e))
                log.warning("chain client: %s; retrying in %.2f s", e, delay)
                # Pacing a retry, not waiting for a state.
                await trio.sleep(delay)
                delay = min(delay * 2, self._max_retry_delay)
                continue
            delay = self._retry_delay
            self._set_health(True, "")
            with trio.move_on_after(self._idle_poll_s):
                await wakeup.wait()

    async def _round(self) -> None:
        height = self._stream_height
        if height is None or not self._chain_checked:
            status = await self._call(self.rpc.status())
            if status.chain_id != self.chain_id:
                raise WrongChain(self.chain_id, status.chain_id)
            self._chain_checked = True
            height = status.latest_height
        for tx in self.outbox.pending_txs():
            if tx.hash in self._answered and self._looked_at.get(tx.hash, -1) >= height:
                continue  # answered, and no block since it was last looked at
            await self._observe(tx, height)
        in_flight = len(self.outbox.pending_txs())
        while in_flight < self.max_txs_in_flight:
            batch = self._next_batch()
            if not batch:
                break
            if await self._send_new(batch, height):
                in_flight += 1

    async def _follow_heights(self) -> None:
        """Wake the loop at every new block, for as long as the sender runs."""
        delay = self._retry_delay
        while True:
            try:
                async with self.rpc.events(types=HEIGHTS_ONLY, retry_delay=self._retry_delay,
                                           max_retry_delay=self._max_retry_delay) as frames:
                    async for frame in frames:
                        delay = self._retry_delay
                        self._stream_height = max(frame.height, self._stream_height or 0)
                        self._wake()
            except (RpcError, httpx.HTTPError, OSError, msgspec.DecodeError) as e:
                log.debug("chain client: block stream ended (%s)", e)
            self._stream_height = None  # the height comes from `status` until it is back
            await trio.sleep(delay)
            delay = min(delay * 2, self._max_retry_delay)

    # -- observing ------------------------------------------------------------------------------

    async def _observe(self, tx: PendingTx, height: int) -> None:
        # `height` was committed before this lookup: not found means not in any block <= height.
        view = await self._call(self.rpc.tx(tx.hash))
        if view is not None:
            result = view.result
            if result.code == OK:
                ids = self.outbox.settle_tx(tx.hash, "included", code=OK, log=result.log,
                                            height=view.height)
            elif len(tx.message_ids) > 1:
                # A failed tx changed nothing: its messages may go again, each alone, so that
                # only the one at fault is rejected.
                log.info("tx %s failed at height %d (%s); resending its %d messages one per tx",
                         tx.hash.hex(), view.height, result.log, len(tx.message_ids))
                self.outbox.requeue_tx(tx.hash, f"batch failed at height {view.height} "
                                       f"(code {result.code}): {result.log}", solo=True)
                ids = []
            else:
                ids = self.outbox.settle_tx(tx.hash, "rejected", code=result.code,
                                            log=result.log, height=view.height)
            self._forget(tx.hash)
            await self._announce(ids)
        elif height > tx.timeout_height:
            log.info("tx %s not included by its timeout height %d; sending its messages again",
                     tx.hash.hex(), tx.timeout_height)
            self.outbox.requeue_tx(tx.hash, f"not included by timeout height {tx.timeout_height}")
            self._forget(tx.hash)
        else:
            self._looked_at[tx.hash] = height
            if tx.hash not in self._answered:
                await self._broadcast(tx, fresh=False)

    # -- sending --------------------------------------------------------------------------------

    def _next_batch(self) -> list[OutboxEntry]:
        batch: list[OutboxEntry] = []
        for entry in self.outbox.queued(self.max_msgs_per_tx):
            if entry.solo:
                return batch or [entry]
            batch.append(entry)
        return batch

    async def _send_new(self, batch: list[OutboxEntry], height: int) -> bool:
        """Sign `batch` into a fresh tx, record it, broadcast it; False if it never left."""
        ids = [e.id for e in batch]
        try:
            raw, tx_hash = self._sign(batch, height + self.timeout_blocks)
        except ValueError as e:
            await self._refuse(ids, None, ERR_DECODE, f"cannot make a valid tx: {e}")
            return False
        self.outbox.assign(ids, tx_hash, raw, height + self.timeout_blocks)
        # Signed at `height`: no block up to `height` can hold it.
        self._looked_at[tx_hash] = height
        await self._broadcast(PendingTx(tx_hash, raw, height + self.timeout_blocks, tuple(ids)),
                              fresh=True)
        return True

    def _sign(self, batch: list[OutboxEntry], timeout_height: int) -> tuple[bytes, bytes]:
        msgs: list[BaseMsg] = []
        for entry in batch:
            if entry.msg.signers != (self.account,):
                raise ValueError(f"message {entry.id} ({entry.tag}) must be signed by "
                                 f"{', '.join(entry.msg.signers)}; this sender sends for "
                                 f"{self.account}")
            msgs.append(entry.msg)
        if self._key.address != self.account:
            # The warm key acts for the account under its authz grants; one MsgExec per message
            # keeps the tx's message index equal to the batch index in the chain's logs.
            msgs = [MsgExec(grantee=self._key.address, msgs=(m,)) for m in msgs]
        memo = f"outbox {batch[0].id}-{batch[-1].id} {secrets.token_hex(6)}"
        body = TxBody(chain_id=self.chain_id, messages=tuple(msgs), memo=memo,
                      timeout_height=timeout_height)
        tx = sign_tx(body, self._key)
        raw = encode(tx)
        if len(raw) > MAX_TX_BYTES:
            raise ValueError(f"the tx is {len(raw)} bytes, the limit is {MAX_TX_BYTES}")
        return raw, tx.hash

    async def _broadcast(self, tx: PendingTx, *, fresh: bool) -> None:
        """Offer `tx` to the node. `fresh`: signed this round and never offered before, so no
        node can hold it and a refusal may give it up at once. A tx offered before (in an
        earlier round or before a restart) may sit in some node's mempool: only its inclusion
        or its timeout height passing settles it, never a refusal."""
        try:
            view = await self._call(self.rpc.broadcast(tx.raw, "sync"))
        except _Transient as e:
            self.outbox.note_error(tx.hash, str(e))
            raise
        except RpcError as e:  # the RPC refused the bytes themselves (400, 413)
            code = ERR_TOO_LARGE if e.status == 413 else ERR_DECODE
            await self._judge(tx, code, "", f"RPC refused the tx: {e.message}", fresh=fresh)
            return
        await self._judge(tx, view.code, view.codespace, view.log, fresh=fresh)

    async def _judge(self, tx: PendingTx, code: int, codespace: str, log_: str, *,
                     fresh: bool) -> None:
        if code in (OK, ERR_DUPLICATE):
            self._answered.add(tx.hash)
            return
        reason = f"check_tx code {code}: {log_}"
        if code in _TRANSIENT_CODES or (code == ERR_INTERNAL and codespace != "tx"):
            self.outbox.note_error(tx.hash, reason)
            raise _Transient(f"node refused tx {tx.hash.hex()} for now ({reason})")
        if code == ERR_CHAIN_ID:
            raise WrongChain(self.chain_id, log_)
        if not fresh:
            # Some node may still include it: the observer settles it by height.
            self.outbox.note_error(tx.hash, reason)
            self._answered.add(tx.hash)
            return
        if code == ERR_TIMEOUT:
            # Our idea of the height is off (the chain moved on, or timeout_blocks is more than
            # the chain allows): a fresh tx with a fresh timeout, after a pause.
            self.outbox.requeue_tx(tx.hash, reason)
            raise _Transient(f"tx {tx.hash.hex()} refused for its timeout height ({reason})")
        await self._refuse(list(tx.message_ids), tx.hash, code, reason)

    async def _refuse(self, ids: list[int], tx_hash: bytes | None, code: int, reason: str
                      ) -> None:
        """The chain (or the signing) refused these messages for their own fault: one message
        is rejected; several are split, each to be tried alone."""
        if len(ids) > 1:
            log.info("batch of %d messages refused (%s); resending them one per tx", len(ids),
                     reason)
            if tx_hash is not None:
                self.outbox.requeue_tx(tx_hash, reason, solo=True)
            else:
                self.outbox.make_solo(ids, reason)
            return
        log.warning("message %d rejected: %s", ids[0], reason)
        if tx_hash is not None:
            self.outbox.settle_tx(tx_hash, "rejected", code=code, log=reason, height=None)
        else:
            self.outbox.reject_queued(ids[0], reason, code=code)
        await self._announce(ids)

    # -- plumbing -------------------------------------------------------------------------------

    async def _call(self, awaitable):  # type: ignore[no-untyped-def]
        """An RPC call whose network failures (and 5xx answers) become _Transient."""
        try:
            return await awaitable
        except RpcError as e:
            if e.status == 0 or e.status >= 500 or e.status == 429:
                raise _Transient(str(e)) from e
            raise
        except (httpx.HTTPError, OSError, msgspec.DecodeError) as e:
            raise _Transient(f"chain RPC unreachable: {type(e).__name__}: {e}") from e

    async def _announce(self, ids: list[int]) -> None:
        if not ids:
            return
        self._settled.set()
        self._settled = trio.Event()
        if self._results is not None:
            for i in ids:
                entry = self.outbox.get(i)
                if entry is not None and entry.settled:
                    await self._results.send(settlement_of(entry))

    def _wake(self) -> None:
        self._wakeup.set()

    def _wake_for_submit(self) -> None:
        if self._batch_window_s > 0:
            self._submitted.set()
        else:
            self._wake()

    async def _coalesce_submits(self) -> None:
        """Wake the loop `batch_window_s` after a submit, so that the messages submitted
        meanwhile go out in one tx: fewer txs for the chain to check, gossip and execute.
        (A tx sent any time before the next proposal makes the same block.)"""
        while True:
            await self._submitted.wait()
            await trio.sleep(self._batch_window_s)  # gathering a batch, not waiting for a state
            # No await from here to the round: a submit after this reset sets the event anew,
            # one before it is in the outbox the round reads.
            self._submitted = trio.Event()
            self._wake()

    def _forget(self, tx_hash: bytes) -> None:
        self._answered.discard(tx_hash)
        self._looked_at.pop(tx_hash, None)

    def _set_health(self, ok: bool, error: str) -> None:
        failures = 0 if ok else self.health.consecutive_failures + 1
        new = SenderHealth(ok, failures, error)
        if new != self.health:
            self.health = new
            self._health_changed.set()
            self._health_changed = trio.Event()
