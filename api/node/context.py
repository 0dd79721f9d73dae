"""`ApiNode`: what the request paths of one API node share (its settings, chain client, chain
state, ML-node pool, stores, HTTP client, bandwidth limiter, and the host's broker and PoC
orchestrator when it runs them). Built and owned by `serve_api`,
whose nursery runs its background tasks; the apps only read it and call its methods.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import msgspec
import trio

from api.bandwidth import BandwidthLimiter, BandwidthParams
from api.chain.sender import TxSender
from api.mlnodes import MlNodePool, NoMlNode
from api.node.chain_state import (
    ChainSnapshot,
    ChainStateCache,
    TransferAgentKeys,
    ValidatorKeys,
)
from api.node.config import ResolvedConfig
from api.node.errors import ChainUnavailable
from api.node.stores import PayloadStore, ReplayCache
from chain.rpc.client import RpcClient, RpcError

if TYPE_CHECKING:
    from api.broker import Broker
    from api.poc.orchestrator import PocOrchestrator

log = logging.getLogger(__name__)


class _TokenCount(msgspec.Struct):
    count: int


@dataclass
class ApiNode:
    resolved: ResolvedConfig
    rpc: RpcClient
    cache: ChainStateCache
    sender: TxSender
    pool: MlNodePool
    replay: ReplayCache
    payloads: PayloadStore
    http: httpx.AsyncClient
    ta_keys: TransferAgentKeys
    validator_keys: ValidatorKeys
    # The host's broker and PoC orchestrator (None when a test gives the node a plain pool).
    broker: Broker | None = None
    orchestrator: PocOrchestrator | None = None
    rng: random.Random = field(default_factory=random.SystemRandom)
    limiter: BandwidthLimiter = field(default_factory=lambda: BandwidthLimiter(
        BandwidthParams(1, 0, 0, 1, 1)))
    # Escrow of requests this node is handling now, per developer: the chain's balance does
    # not show them until their MsgStartInference is in a block.
    reserved: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Balances read while the chain state was at `_balances_height` (one block's worth).
    _balances: dict[str, int] = field(default_factory=dict)
    _balances_height: int = -1

    @property
    def account(self) -> str:
        return self.resolved.account

    @property
    def public_url(self) -> str:
        return self.resolved.public_url

    @property
    def limits(self):  # noqa: ANN201 - LimitsConfig
        return self.resolved.config.limits

    def mlnode_token(self, node_id: str) -> str | None:
        for node in self.resolved.config.ml_nodes:
            if node.id == node_id:
                return node.token
        return None

    def mlnode_headers(self, node_id: str) -> dict[str, str]:
        token = self.mlnode_token(node_id)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def update_limiter(self, snapshot: ChainSnapshot) -> None:
        p = snapshot.params
        self.limiter.update(BandwidthParams(
            bytes_per_block=p.bandwidth_bytes_per_block,
            bytes_per_input_token=p.bandwidth_bytes_per_input_token,
            bytes_per_output_token=p.bandwidth_bytes_per_output_token,
            lifespan_blocks=p.expiration_blocks, hosts=max(1, snapshot.hosts_with_weight())))

    async def balance(self, address: str) -> int:
        """`address`'s balance, read from the chain once per block: within a block it cannot
        change (requests this node handles meanwhile are in `reserved`)."""
        height = self.cache.snapshot.height if self.cache.snapshot is not None else None
        if height != self._balances_height:
            self._balances.clear()
            self._balances_height = -1 if height is None else height
        elif address in self._balances:
            return self._balances[address]
        try:
            answer = await self.rpc.query("bank/balance", address=address)
        except (RpcError, httpx.HTTPError, OSError, msgspec.DecodeError) as e:
            raise ChainUnavailable(f"balance of {address}: {e}") from None
        amount = int(answer["amount"])
        if height is not None and self._balances_height == height:
            self._balances[address] = amount
        return amount

    async def member_weight(self, epoch: int, address: str) -> int | None:
        """`address`'s weight in the group of `epoch`; None if it is not a member (or the
        epoch has no group). The effective epoch's group comes from the chain-state snapshot
        (read every block), any other from the chain."""
        snapshot = self.cache.snapshot
        if snapshot is not None and snapshot.epoch.effective_epoch == epoch:
            return next((int(m.get("weight", 0)) for m in snapshot.members
                         if m.get("address") == address), None)
        try:
            group = await self.rpc.query("epochs/group", epoch=str(epoch))
        except RpcError as e:
            if e.code == "query_failed" and e.app_code in (2, 3):
                return None
            raise ChainUnavailable(f"group of epoch {epoch}: {e}") from None
        except (httpx.HTTPError, OSError, msgspec.DecodeError) as e:
            raise ChainUnavailable(f"group of epoch {epoch}: {e}") from None
        return next((int(m.get("weight", 0)) for m in group.get("members", [])
                     if m.get("address") == address), None)

    async def count_prompt_tokens(self, model: str, body_messages: object) -> int | None:
        """The prompt's real token count from one of this host's ML nodes serving `model`
        (its /tokenize with the chat template), or None when none answers in time."""
        with trio.move_on_after(self.limits.tokenize_timeout_s):
            try:
                async with self.pool.lease(model) as node:
                    return await tokenize(self.http, node.url, self.mlnode_headers(node.node_id),
                                          model, body_messages)
            except (NoMlNode, httpx.HTTPError, OSError, msgspec.DecodeError,
                    msgspec.ValidationError) as e:
                log.debug("tokenize for %s failed: %s", model, e)
        return None


async def tokenize(http: httpx.AsyncClient, url: str, headers: dict[str, str], model: str,
                   messages: object) -> int | None:
    response = await http.post(f"{url}/tokenize", headers=headers,
                               content=msgspec.json.encode({"model": model,
                                                            "messages": messages}))
    if response.status_code != 200:
        return None
    return msgspec.json.decode(response.content, type=_TokenCount).count
