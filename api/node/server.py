"""`serve_api`: one API node: its chain client (TxSender, chain-state cache fed by the event
follower), its stores, and three Hypercorn servers (public, ML-node callbacks, admin), all in
one nursery. A trio service function:

    handle = await nursery.start(serve_api, resolved)      # once all three servers listen
    handle.public_url, handle.node, ...

cancelling the nursery stops everything (servers, sender, follower) and closes the stores.

By default the node is a host's: the configured ML nodes become the broker (the pool the request
paths lease from, its admin routes on the admin server), the PoC orchestrator follows the chain
(its callbacks on the callbacks server, its proofs on the public one), and the account registers
as a participant at start when the config names its consensus key (api/node/host.py). Every node
serves the admin routes that speak for its account on chain (unit-of-compute price and model
proposals, api/node/admin.py).

Other components plug in without this module knowing them:
  * `pool`: an ML-node pool to use instead (a StaticPool in tests), or a function of the
    ApiNode that makes one; the node then runs neither the broker nor the PoC orchestrator;
  * `blueprints`: extra Quart blueprints per server (`ServerBlueprints`), or a function of the
    ApiNode that returns them (PoC callbacks, broker admin routes);
  * `background`: service functions `fn(node, task_status=...)` started in the node's nursery.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Blueprint

from api.chain.events import EventFollower
from api.chain.outbox import Outbox
from api.chain.sender import TxSender
from api.durable import flush_wal_files
from api.mlnodes import MlNodePool, StaticPool
from api.node.admin import node_admin_blueprint
from api.node.app import create_private_app, create_public_app
from api.node.chain_state import (
    ChainSnapshot,
    ChainStateCache,
    TransferAgentKeys,
    ValidatorKeys,
)
from api.node.config import ResolvedConfig, ServerConfig
from api.node.context import ApiNode
from api.node.host import HostServices, account_public_key
from api.node.stores import PayloadStore, ReplayCache
from api.validation.worker import validation_service
from chain.rpc.client import RpcClient, RpcError
from chain.rpc.schema import EventFrame

log = logging.getLogger(__name__)

# An event type no module emits: the follower's frames then carry only heights.
HEIGHTS_ONLY = ("api.node.heights-only",)


@dataclass(frozen=True)
class ServerBlueprints:
    public: Sequence[Blueprint] = ()
    callbacks: Sequence[Blueprint] = ()
    admin: Sequence[Blueprint] = ()


@dataclass
class ApiServer:
    """A running API node: the shared state and the three servers' base URLs (as bound)."""

    node: ApiNode
    public_url: str
    callbacks_url: str
    admin_url: str
    cancel_scope: trio.CancelScope = field(repr=False, default_factory=trio.CancelScope)

    def stop(self) -> None:
        self.cancel_scope.cancel()


PoolFactory = Callable[[ApiNode], MlNodePool]
BlueprintFactory = Callable[[ApiNode], ServerBlueprints]
Background = Callable[..., Awaitable[Any]]


def static_pool(resolved: ResolvedConfig) -> StaticPool:
    return StaticPool({n.id: (n.url.rstrip("/"), tuple(n.models))
                       for n in resolved.config.ml_nodes})


async def _chain_id(rpc: RpcClient) -> str:
    delay = 0.05
    while True:
        try:
            return (await rpc.status()).chain_id
        except (RpcError, httpx.HTTPError, OSError, msgspec.DecodeError) as e:
            log.warning("API node: chain RPC %s not reachable yet (%s)", rpc.base_url, e)
        await trio.sleep(delay)  # pacing a retry, not waiting for a state
        delay = min(delay * 2, 2.0)


def _hypercorn(server: ServerConfig, name: str) -> Config:
    hyper = Config()
    host = server.host
    hyper.bind = [f"[{host}]:{server.port}" if ":" in host else f"{host}:{server.port}"]
    hyper.accesslog = None
    hyper.errorlog = logging.getLogger(f"api.node.server.{name}")
    hyper.graceful_timeout = 1.0
    hyper.keep_alive_timeout = 300
    return hyper


async def serve_api(
    resolved: ResolvedConfig,
    *,
    pool: MlNodePool | PoolFactory | None = None,
    blueprints: ServerBlueprints | BlueprintFactory | None = None,
    background: Sequence[Background] = (),
    rng: random.Random | None = None,
    task_status: trio.TaskStatus[ApiServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the API node until cancelled."""
    config = resolved.config
    state = resolved.state_dir
    state.mkdir(parents=True, exist_ok=True)
    outbox = Outbox(state / "outbox.db")
    replay = ReplayCache(state / "replay.db")
    payloads = PayloadStore(state / "payloads.db")
    follower = None
    try:
        async with RpcClient(config.chain_rpc) as rpc, httpx.AsyncClient(timeout=30) as http:
            chain_id = await _chain_id(rpc)
            sender = TxSender(rpc, outbox, resolved.signer, resolved.account, chain_id=chain_id)
            follower = EventFollower(rpc, state / "events.db", HEIGHTS_ONLY, name="chain-state")
            cache = ChainStateCache(rpc, follower, wait_s=config.limits.chain_state_wait_s)
            node = ApiNode(resolved=resolved, rpc=rpc, cache=cache, sender=sender,
                           pool=static_pool(resolved), replay=replay, payloads=payloads,
                           http=http, ta_keys=TransferAgentKeys(rpc, cache),
                           validator_keys=ValidatorKeys(rpc, cache),
                           rng=rng or random.SystemRandom())
            host = None
            if pool is None:
                host = HostServices.create(node, await account_public_key(rpc, resolved))
            else:
                node.pool = pool if hasattr(pool, "lease") else pool(node)  # type: ignore
            extra = blueprints(node) if callable(blueprints) else (blueprints
                                                                  or ServerBlueprints())
            if host is not None:
                public, callbacks, admin = host.blueprints()
                extra = ServerBlueprints(public=[*extra.public, *public],
                                         callbacks=[*extra.callbacks, *callbacks],
                                         admin=[*extra.admin, *admin])
            cache.listeners.append(_housekeeping(node))

            async with trio.open_nursery() as nursery:
                await nursery.start(flush_wal_files)  # the stores' writes to the disk
                await nursery.start(sender.run)
                await nursery.start(cache.run)
                if host is not None:
                    await nursery.start(host.run_broker)
                for service in background:
                    await nursery.start(service, node)
                apps = {
                    "public": (config.public, create_public_app(node, extra.public)),
                    "callbacks": (config.callbacks, create_private_app(
                        "callbacks", resolved.callback_token, extra.callbacks, node)),
                    "admin": (config.admin, create_private_app(
                        "admin", resolved.admin_token,
                        [*extra.admin, node_admin_blueprint(node)], node)),
                }
                urls: dict[str, str] = {}
                for name, (server, app) in apps.items():
                    binds = await nursery.start(_serve, app, _hypercorn(server, name))
                    urls[name] = binds[0]
                if host is not None:
                    await nursery.start(host.run_orchestrator, _reachable(urls["callbacks"]))
                    # The validation worker reads the seeds the orchestrator commits.
                    await nursery.start(validation_service(host.orchestrator.seeds), node)
                    nursery.start_soon(host.register)
                log.info("API node %s serving: public %s, callbacks %s, admin %s",
                         resolved.account, urls["public"], urls["callbacks"], urls["admin"])
                task_status.started(ApiServer(node, urls["public"], urls["callbacks"],
                                              urls["admin"], nursery.cancel_scope))
    finally:
        outbox.close()
        replay.close()
        payloads.close()
        if follower is not None:
            follower.close()


def _reachable(bound: str) -> str:
    """A bound URL as a local client reaches it (an unspecified address is this host)."""
    for unspecified in ("//0.0.0.0:", "//[::]:"):
        bound = bound.replace(unspecified, "//127.0.0.1:")
    return bound


async def _serve(app: Any, hyper: Config, *, task_status: trio.TaskStatus[list[str]]) -> None:
    await serve(app, hyper, task_status=task_status)


def _housekeeping(node: ApiNode) -> Callable[[EventFrame, ChainSnapshot], Awaitable[None]]:
    """Per block: forget replay ids whose time has left the chain's window, payloads past
    their keeping, and bandwidth slots that can no longer matter."""

    async def on_block(frame: EventFrame, snapshot: ChainSnapshot) -> None:
        cutoff = snapshot.time_ns - snapshot.params.max_request_age_s * 1_000_000_000
        node.replay.prune(cutoff)
        node.payloads.prune(snapshot.epoch.effective_epoch, node.resolved.config.payload_epochs)
        node.limiter.prune(snapshot.height)

    return on_block
