"""What the broker wants each ML node to do, decided without I/O (DESIGN.md section 6).

`plan` maps the epoch stage the chain is in (`StageInfo`) and the operator's node list to one
`Target` per node:

    stage                                   a node the chain keeps serving   any other node
    sprint (PoC start .. end of generation)  inference                        PoC generation
    commit exchange, PoC validation          inference                        PoC validation
    set new validators, inference            inference                        inference

A node that is not active (disabled by the operator, or added during a PoC) is stopped. The
operator's enable/disable becomes active at the next PoC start (a disable lets the node finish
the epoch it earned weight for); an enable also becomes active at once while the chain is in
the inference stage (`AdminState.applied`). Generation lanes (the ML node's `node_id` /
`node_count`) are fixed once per epoch, when its Sprint is first seen, over the nodes that
generate then, so a node that restarts or comes back mid-Sprint keeps its own lane and no two
nodes ever scan the same nonces.

Pure: no HTTP, no clock, no trio.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from chain.types.msgs.participants import ModelId, NodeName
from chain.types.poc import (
    DEFAULT_FRAUD_THRESHOLD,
    DEFAULT_MISMATCH_RATE,
    BlockHashHex,
    PocParams,
    PowInitRequest,
    PubKeyHex,
)

Stage = Literal["sprint", "commit_exchange", "poc_validation", "set_new_validators", "inference"]
POC_STAGES: frozenset[str] = frozenset({"sprint", "commit_exchange", "poc_validation"})

HttpUrl = Annotated[str, Meta(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=1024)]


class NodeSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An ML node as the operator declares it: its id (the chain's `node_id` for it), the base
    URL of its control API, the models it can serve (the first is served unless the chain
    assigns another of them), and whether it may work."""

    node_id: NodeName
    url: HttpUrl
    models: Annotated[tuple[ModelId, ...], Meta(min_length=1, max_length=16)]
    enabled: bool = True
    # Requests leased to it at once (inference and validation replays together).
    max_concurrent: Annotated[int, Meta(ge=1, le=100_000)] = 64


class PocSession(msgspec.Struct, frozen=True):
    """The PoC of one epoch as the host's ML nodes run it: seeded by the block hash of the PoC
    start height, inputs keyed by the host's account public key."""

    epoch: int
    block_hash: BlockHashHex
    block_height: int
    public_key: PubKeyHex
    params: PocParams
    callback_url: str | None = None
    fraud_threshold: float = DEFAULT_FRAUD_THRESHOLD
    mismatch_rate: float = DEFAULT_MISMATCH_RATE

    def init_request(self, lane: int, lanes: int) -> PowInitRequest:
        return PowInitRequest(block_hash=self.block_hash, block_height=self.block_height,
                              public_key=self.public_key, node_id=lane, node_count=lanes,
                              params=self.params, url=self.callback_url,
                              fraud_threshold=self.fraud_threshold,
                              mismatch_rate=self.mismatch_rate)


@dataclass(frozen=True)
class StageInfo:
    """The chain at one height, as the broker needs it.

    `epoch`: the epoch whose PoC runs (during a PoC stage) or the effective one. `kept_nodes`:
    this host's node ids with `poc_slot` in the effective epoch's group (they keep serving
    inference through the PoC). `node_models`: the model the effective epoch assigns each node.
    `poc`: the running PoC (required in PoC stages; without it nodes keep serving inference).
    """

    height: int
    stage: Stage
    epoch: int
    kept_nodes: frozenset[str] = frozenset()
    node_models: Mapping[str, str] = field(default_factory=dict)
    poc: PocSession | None = None


class Goal(enum.Enum):
    INFERENCE = "INFERENCE"
    POC_GENERATE = "POC_GENERATE"
    POC_VALIDATE = "POC_VALIDATE"
    STOPPED = "STOPPED"


@dataclass(frozen=True)
class Target:
    """One node's intended state: the goal and what it needs (the model, the PoC request)."""

    goal: Goal
    model: str | None = None
    pow: PowInitRequest | None = None

    def describe(self) -> str:
        if self.goal is Goal.INFERENCE:
            return f"inference {self.model}"
        if self.pow is not None:
            return (f"{self.goal.value} block {self.pow.block_height} lane "
                    f"{self.pow.node_id}/{self.pow.node_count}")
        return self.goal.value


STOPPED = Target(Goal.STOPPED)


@dataclass
class AdminState:
    """The operator's wish (`enabled`) and what is in force (`active`)."""

    enabled: bool
    active: bool

    def applied(self, stage: Stage, poc_started: bool) -> None:
        """Bring `active` up to date at a PoC start (either way) or, for an enable, in the
        inference stage."""
        if poc_started or (stage == "inference" and self.enabled):
            self.active = self.enabled


@dataclass(frozen=True)
class Lanes:
    epoch: int
    lane_of: Mapping[str, int]

    @property
    def count(self) -> int:
        return len(self.lane_of)


def fix_lanes(epoch: int, generating: Iterable[str]) -> Lanes:
    return Lanes(epoch, {node_id: i for i, node_id in enumerate(sorted(generating))})


def inference_model(spec: NodeSpec, info: StageInfo) -> str:
    """The chain's assignment when this node can serve it, else the node's first model."""
    assigned = info.node_models.get(spec.node_id)
    return assigned if assigned in spec.models else spec.models[0]


def plan(info: StageInfo, specs: Mapping[str, NodeSpec], active: Mapping[str, bool],
         lanes: Lanes | None) -> dict[str, Target]:
    """Each node's target in `info` (module docstring). `lanes` must be the running PoC's."""
    targets: dict[str, Target] = {}
    poc = info.poc if info.stage in POC_STAGES else None
    for node_id, spec in specs.items():
        if not active.get(node_id, False):
            targets[node_id] = STOPPED
            continue
        serve = Target(Goal.INFERENCE, model=inference_model(spec, info))
        if poc is None or node_id in info.kept_nodes:
            targets[node_id] = serve
            continue
        lane = None if lanes is None or lanes.epoch != poc.epoch else lanes.lane_of.get(node_id)
        if lane is None:
            # Activated after the lanes were fixed: no lane is free for it this PoC.
            targets[node_id] = STOPPED
            continue
        goal = Goal.POC_GENERATE if info.stage == "sprint" else Goal.POC_VALIDATE
        targets[node_id] = Target(goal, pow=poc.init_request(lane, lanes.count))
    return targets
