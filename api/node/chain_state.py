"""What the API node knows of the chain, refreshed at every block: a `ChainSnapshot` (chain time
and height, the effective epoch and its stage, the effective group with its model snapshot,
the participants' URLs, the inference params and the model prices), read by the request paths
without waiting, and the keys a transfer agent may sign with.

`ChainStateCache.run` follows the blocks with an `EventFollower` (so that per-block work of other
components can hang on the same stream later) and refreshes the snapshot with a handful of
queries after each new block; the queries run concurrently and a refresh that fails keeps the
previous snapshot. A request never waits for a refresh: it takes the current snapshot, and only
before the first one exists does it wait, for at most `wait_s` (then 503).

This module never changes chain state.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
import trio

from api.chain.events import EventFollower
from api.node.errors import ChainUnavailable
from chain.crypto.address import address_from_pubkey
from chain.rpc.client import RpcClient, RpcError
from chain.rpc.schema import EventFrame

log = logging.getLogger(__name__)

START_TAG = "inference/MsgStartInference"
VALIDATION_TAG = "validation/MsgValidation"


class PocStages(msgspec.Struct, frozen=True):
    poc_start: int
    sprint_end_exclusive: int
    commit_deadline: int
    validation_start: int
    validation_end: int
    set_new_validators: int
    claim: int
    next_poc_start: int


class EpochInfo(msgspec.Struct, frozen=True):
    """The `epochs/current` answer."""

    effective_epoch: int
    effective_poc_start: int
    upcoming_epoch: int | None
    poc: PocStages
    stage: str

    @property
    def poc_running(self) -> bool:
        """A PoC runs from its start until its epoch becomes effective."""
        return self.upcoming_epoch is not None


class ModelSpec(msgspec.Struct, frozen=True):
    id: str
    units_of_compute_per_token: int = 0
    validation_threshold_ppm: int = 0
    base_per_token_price: int = 0
    hf_repo: str = ""
    hf_commit: str = ""


class InferenceParams(msgspec.Struct, frozen=True):
    """The inference params the API node uses (chain defaults where a field is absent)."""

    expiration_blocks: int = 20
    max_request_age_s: int = 300
    max_request_advance_s: int = 60
    bandwidth_bytes_per_block: int = 10752 * 1024
    bandwidth_bytes_per_input_token: int = 3
    bandwidth_bytes_per_output_token: int = 655


class Price(msgspec.Struct, frozen=True):
    model: str
    price: int
    precise_price: int = 0


class Participant(msgspec.Struct, frozen=True):
    address: str
    inference_url: str
    status: str = "active"
    worker_key: str | None = None
    coin_balance: int = 0


class ChainSnapshot(msgspec.Struct, frozen=True):
    chain_id: str
    height: int
    time_ns: int
    epoch: EpochInfo
    # The effective group as `epochs/group` gives it: {"group": {...}, "members": [...]}.
    group: dict[str, Any]
    params: InferenceParams
    prices: dict[str, int]
    participants: dict[str, Participant]
    # Seconds per block, measured over the blocks this node has seen (1.0 until it knows).
    block_time_s: float = 1.0

    @property
    def members(self) -> list[dict[str, Any]]:
        return list(self.group.get("members", []))

    @property
    def models(self) -> list[ModelSpec]:
        """The effective epoch's model snapshot (what may be served now)."""
        return msgspec.convert(self.group.get("group", {}).get("models", []), list[ModelSpec])

    def model(self, model_id: str) -> ModelSpec | None:
        return next((m for m in self.models if m.id == model_id), None)

    def hosts_with_weight(self) -> int:
        return sum(1 for m in self.members if m.get("weight", 0) > 0)


SnapshotListener = Callable[[EventFrame, ChainSnapshot], Awaitable[None]]


class ChainStateCache:
    def __init__(self, rpc: RpcClient, follower: EventFollower | None = None, *,
                 wait_s: float = 5.0, retry_delay: float = 0.05) -> None:
        self.rpc = rpc
        self.follower = follower
        self.wait_s = wait_s
        self._retry_delay = retry_delay
        self.snapshot: ChainSnapshot | None = None
        self._changed = trio.Event()
        self._first_seen: tuple[int, int] | None = None  # (height, time_ns)
        self.listeners: list[SnapshotListener] = []
        self.last_error = ""

    # -- readers --------------------------------------------------------------------------------

    async def current(self) -> ChainSnapshot:
        """The latest snapshot; before the first, wait up to `wait_s` (ChainUnavailable)."""
        if self.snapshot is not None:
            return self.snapshot
        with trio.move_on_after(self.wait_s):
            while self.snapshot is None:
                await self._changed.wait()
            return self.snapshot
        raise ChainUnavailable(self.last_error or "no chain state yet")

    async def wait_for_height(self, height: int) -> ChainSnapshot:
        while self.snapshot is None or self.snapshot.height < height:
            await self._changed.wait()
        return self.snapshot

    # -- refreshing -----------------------------------------------------------------------------

    async def refresh(self) -> ChainSnapshot:
        """Read everything anew (concurrently) and publish the snapshot."""
        results: dict[str, Any] = {}

        async def get(name: str, call: Awaitable[Any]) -> None:
            results[name] = await call

        status = await self.rpc.status()
        at = str(status.latest_height)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(get, "epoch", self.rpc.query("epochs/current", at_height=at,
                                                                as_type=EpochInfo))
                nursery.start_soon(get, "params", self.rpc.query("params/inference",
                                                                 as_type=InferenceParams))
                nursery.start_soon(get, "prices", self.rpc.query("inference/prices",
                                                                 as_type=list[Price]))
                nursery.start_soon(get, "participants", self.rpc.query(
                    "participants/all", as_type=list[Participant]))
        except ExceptionGroup as group:  # errors only (a cancellation is a BaseExceptionGroup)
            raise _first(group) from None
        epoch: EpochInfo = results["epoch"]
        group = await self.rpc.query("epochs/group", epoch=str(epoch.effective_epoch))
        snapshot = ChainSnapshot(
            chain_id=status.chain_id, height=status.latest_height,
            time_ns=status.latest_block_time_ns, epoch=epoch, group=group,
            params=results["params"], prices={p.model: p.price for p in results["prices"]},
            participants={p.address: p for p in results["participants"]},
            block_time_s=self._block_time(status.latest_height, status.latest_block_time_ns))
        self._publish(snapshot)
        return snapshot

    def _block_time(self, height: int, time_ns: int) -> float:
        if self._first_seen is None:
            self._first_seen = (height, time_ns)
        h0, t0 = self._first_seen
        if height <= h0 or time_ns <= t0:
            return self.snapshot.block_time_s if self.snapshot else 1.0
        return (time_ns - t0) / 1e9 / (height - h0)

    def _publish(self, snapshot: ChainSnapshot) -> None:
        if self.snapshot is not None and snapshot.height < self.snapshot.height:
            return  # an older answer that lost the race
        self.snapshot = snapshot
        self.last_error = ""
        self._changed.set()
        self._changed = trio.Event()

    async def _try_refresh(self) -> bool:
        try:
            await self.refresh()
            return True
        except (RpcError, httpx.HTTPError, OSError, msgspec.DecodeError,
                msgspec.ValidationError) as e:
            self.last_error = f"{type(e).__name__}: {e}"
            log.warning("chain state refresh failed: %s", self.last_error)
            return False

    async def run(self, *, task_status: trio.TaskStatus[ChainStateCache] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Refresh once now (retrying until the chain answers, without holding up the start),
        then after every new block, until cancelled."""
        task_status.started(self)
        delay = self._retry_delay
        while not await self._try_refresh():
            await trio.sleep(delay)  # pacing a retry, not waiting for a state
            delay = min(delay * 2, 2.0)
        if self.follower is None:
            await self._poll_blocks()
            return
        while True:
            try:
                async with self.follower.blocks() as blocks:
                    async for frame in blocks:
                        await self._on_block(frame)
            except (RpcError, httpx.HTTPError, OSError) as e:
                log.warning("chain state: block stream ended (%s); resuming", e)
            await trio.sleep(self._retry_delay)

    async def _on_block(self, frame: EventFrame) -> None:
        current = self.snapshot
        # Catching up after a restart: a snapshot already past this block says all it would.
        if current is None or frame.height > current.height:
            await self._try_refresh()
        snapshot = self.snapshot
        if snapshot is not None:
            for listener in list(self.listeners):
                await listener(frame, snapshot)

    async def _poll_blocks(self) -> None:
        async with self.rpc.events() as frames:
            async for frame in frames:
                await self._on_block(frame)


def _first(group: BaseExceptionGroup) -> BaseException:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


class GranteeKeys:
    """The public keys an account acts with for one message type: its own key and those of
    the grantees of its `msg_type` grant (warm keys), read from the chain and kept for
    `max_age_blocks`."""

    def __init__(self, rpc: RpcClient, cache: ChainStateCache, msg_type: str, *,
                 role: str = "account", max_age_blocks: int = 20) -> None:
        self.rpc = rpc
        self.cache = cache
        self.msg_type = msg_type
        self.role = role
        self.max_age_blocks = max_age_blocks
        self._keys: dict[str, tuple[int, tuple[bytes, ...]]] = {}

    async def pubkeys(self, address: str, *, fresh: bool = False) -> tuple[bytes, ...]:
        height = self.cache.snapshot.height if self.cache.snapshot else 0
        cached = self._keys.get(address)
        if cached is not None and not fresh and height - cached[0] <= self.max_age_blocks:
            return cached[1]
        keys = await self._read(address, height)
        self._keys[address] = (height, keys)
        return keys

    async def _worker_key(self, address: str) -> bytes | None:
        try:
            participant = await self.rpc.query("participants/participant", address=address)
        except RpcError as e:
            if e.code == "query_failed" and e.app_code == 3:
                return None  # not a participant
            raise
        worker_key = participant.get("worker_key")
        return base64.b64decode(worker_key) if worker_key else None

    async def _read(self, address: str, height: int) -> tuple[bytes, ...]:
        try:
            grants = await self.rpc.query("auth/grants", granter=address)
            accounts = [address] + sorted({
                g["grantee"] for g in grants
                if g["msg_type"] == self.msg_type and (g.get("expiration_height") is None
                                                       or g["expiration_height"] >= height)})
            worker_key = await self._worker_key(address)
            keys: list[bytes] = []
            for account in accounts:
                try:
                    info = await self.rpc.query("auth/account", address=account)
                except RpcError as e:
                    if e.code == "query_failed" and e.app_code == 3:
                        info = {}  # no account (never signed anything)
                    else:
                        raise
                if info.get("pubkey"):
                    keys.append(base64.b64decode(info["pubkey"]))
                elif (account != address and worker_key is not None
                      and address_from_pubkey(worker_key) == account):
                    # The chain's rule (participants.signing_keys): a grantee that never
                    # signed a tx counts with the participant's published worker key.
                    keys.append(worker_key)
            return tuple(keys)
        except (RpcError, httpx.HTTPError, OSError, msgspec.DecodeError) as e:
            raise ChainUnavailable(f"cannot read the keys of {self.role} {address}: {e}"
                                   ) from None


class TransferAgentKeys(GranteeKeys):
    """The keys a transfer agent signs with: its account key and its warm keys (grantees of
    inference/MsgStartInference)."""

    def __init__(self, rpc: RpcClient, cache: ChainStateCache, max_age_blocks: int = 20) -> None:
        super().__init__(rpc, cache, START_TAG, role="transfer agent",
                         max_age_blocks=max_age_blocks)


class ValidatorKeys(GranteeKeys):
    """The keys a validator signs its payload requests with: its account key and its warm keys
    (grantees of validation/MsgValidation)."""

    def __init__(self, rpc: RpcClient, cache: ChainStateCache, max_age_blocks: int = 20) -> None:
        super().__init__(rpc, cache, VALIDATION_TAG, role="validator",
                         max_age_blocks=max_age_blocks)
