"""The host's side of the API node beyond the request paths, wired from the config: the broker
over its ML nodes (api.broker), the PoC orchestrator (api.poc), the admin node list kept on
disk, and the registration of the account as a participant at start.

`HostServices.create(node)` builds them for an `ApiNode` (the broker becomes its pool);
`blueprints()` gives their routes per server; `serve_api` runs `run_broker` before its servers
bind, and `run_orchestrator` (with the callbacks server's URL) and `register` after.

The node list file (STATE_DIR/ml_nodes.json) holds the broker's nodes as the operator left them
(added, removed, enabled, disabled through the admin API); at start it is read back and every
node of the config missing from it is added again. It is rewritten atomically after each
change. This module never sends a message other than the registration.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import trio

from api.broker import Broker, NodeSpec, NodeView, admin_blueprint
from api.node.config import ApiNodeConfig, ResolvedConfig
from api.node.context import ApiNode
from api.poc.http import callbacks_blueprint, poc_proofs_blueprint
from api.poc.orchestrator import CALLBACK_PREFIX, PocOrchestrator
from chain.rpc.client import RpcClient, RpcError
from chain.types.msgs import MsgRegisterParticipant
from chain.types.msgs.participants import MlNodeSpec

log = logging.getLogger(__name__)

NODE_LIST_FILE = "ml_nodes.json"


class AccountKeyUnknown(RuntimeError):
    """The chain has no public key for the host's account (it never signed a tx), so PoC
    inputs cannot be keyed by it."""

    def __init__(self, account: str) -> None:
        super().__init__(f"the chain has no public key for {account}: the account must sign a tx "
                         "(its grant to the warm key, or its registration) before this node "
                         "can run PoC with a warm signer")
        self.account = account


# -- the node list ------------------------------------------------------------------------------


def spec_of(view: NodeView) -> NodeSpec:
    return NodeSpec(node_id=view.node_id, url=view.url, models=view.models,
                    enabled=view.enabled, max_concurrent=view.max_concurrent)


class NodeListFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[NodeSpec] | None:
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=list[NodeSpec])
        except FileNotFoundError:
            return None

    def write(self, specs: Iterable[NodeSpec]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, msgspec.json.encode(list(specs)))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)


def initial_nodes(config: ApiNodeConfig, saved: list[NodeSpec] | None) -> list[NodeSpec]:
    """The saved list, then each configured node it lacks."""
    nodes = list(saved or ())
    known = {n.node_id for n in nodes}
    for n in config.ml_nodes:
        if n.id not in known:
            nodes.append(NodeSpec(node_id=n.id, url=n.url.rstrip("/"), models=n.models,
                                  enabled=n.enabled, max_concurrent=n.max_concurrent))
    return nodes


# -- the services ---------------------------------------------------------------------------------


@dataclass
class HostServices:
    node: ApiNode
    broker: Broker
    orchestrator: PocOrchestrator
    node_list: NodeListFile

    @classmethod
    def create(cls, node: ApiNode, public_key: bytes) -> HostServices:
        """`public_key`: the account's compressed key (`account_public_key`)."""
        resolved = node.resolved
        config = resolved.config
        b = config.broker
        node_list = NodeListFile(resolved.state_dir / NODE_LIST_FILE)
        broker = Broker(initial_nodes(config, node_list.read()), probe_timeout_s=b.probe_timeout_s,
                        command_timeout_s=b.command_timeout_s,
                        inference_up_timeout_s=b.inference_up_timeout_s,
                        validate_timeout_s=b.validate_timeout_s,
                        poll_interval_s=b.poll_interval_s, retry_delay_s=b.retry_delay_s)
        # The callbacks URL is set once the callbacks server is bound (run_orchestrator).
        orchestrator = PocOrchestrator(
            resolved.account, public_key, node.sender, resolved.state_dir, node.rpc, broker,
            callbacks_url=config.callbacks_url or "http://127.0.0.1:0", http=node.http,
            commit_every_blocks=config.poc.commit_every_blocks,
            proof_timeout_s=config.poc.proof_timeout_s,
            proof_attempts=config.poc.proof_attempts)
        node.pool = broker
        node.broker, node.orchestrator = broker, orchestrator
        return cls(node, broker, orchestrator, node_list)

    def blueprints(self) -> tuple[list, list, list]:
        """(public, callbacks, admin) blueprints."""
        return ([poc_proofs_blueprint(self.orchestrator)],
                [callbacks_blueprint(self.orchestrator)],
                [admin_blueprint(self.broker)])

    async def run_broker(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                         ) -> None:
        """The broker and the keeper of its node list on disk."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.broker.run)
            saved = [spec_of(v) for v in self.broker.nodes()]
            self.node_list.write(saved)
            task_status.started()
            while True:
                views = await self.broker.wait_for(
                    lambda views, saved=saved: [spec_of(v) for v in views] != saved)
                saved = [spec_of(v) for v in views]
                await trio.to_thread.run_sync(self.node_list.write, saved)
                log.info("ML node list saved: %s", ", ".join(s.node_id for s in saved) or "none")

    async def run_orchestrator(self, callbacks_url: str, *,
                               task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                               ) -> None:
        config = self.node.resolved.config
        base = (config.callbacks_url or callbacks_url).rstrip("/")
        self.orchestrator.callback_url = base + CALLBACK_PREFIX
        await self.orchestrator.run(task_status=task_status)

    async def register(self) -> None:
        """Register the account as a participant once, if it is not one and the config names
        the consensus key (see api/node/config.py)."""
        node = self.node
        config = node.resolved.config
        if not config.validator_key:
            return
        snapshot = await _first_snapshot(node)
        if node.account in snapshot.participants:
            return
        signer = node.resolved.signer
        msg = MsgRegisterParticipant(
            participant=node.account, inference_url=node.public_url,
            validator_key=bytes.fromhex(config.validator_key),
            ml_nodes=tuple(MlNodeSpec(node_id=v.node_id, models=v.models)
                           for v in self.broker.nodes()),
            worker_key=signer.public_key if signer.address != node.account else None)
        message_id = node.sender.submit(msg)
        log.info("registering %s as a participant at %s", node.account, node.public_url)
        settled = await node.sender.wait_settled(message_id)
        if settled.state == "included":
            log.info("%s registered at height %s", node.account, settled.height)
        else:
            log.error("the registration of %s was refused: %s", node.account, settled.log)


async def _first_snapshot(node: ApiNode):  # noqa: ANN202 - ChainSnapshot
    return await node.cache.wait_for_height(0)


async def account_public_key(rpc: RpcClient, resolved: ResolvedConfig) -> bytes:
    """The account's compressed public key: the signer's when it is the account key, else the
    chain's (retrying while the chain does not answer; AccountKeyUnknown if it has none)."""
    if resolved.signer.address == resolved.account:
        return resolved.signer.public_key
    delay = 0.05
    while True:
        try:
            info = await rpc.query("auth/account", address=resolved.account)
        except RpcError as e:
            if e.code == "query_failed" and e.app_code == 3:
                raise AccountKeyUnknown(resolved.account) from None
            log.warning("reading the key of %s: %s", resolved.account, e)
        except (httpx.HTTPError, OSError, msgspec.DecodeError) as e:
            log.warning("reading the key of %s: %s", resolved.account, e)
        else:
            if not info.get("pubkey"):
                raise AccountKeyUnknown(resolved.account)
            return base64.b64decode(info["pubkey"])
        await trio.sleep(delay)  # pacing a retry, not waiting for a state
        delay = min(delay * 2, 2.0)
