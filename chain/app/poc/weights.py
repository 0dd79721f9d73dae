"""Forming the next epoch's group at the end of its PoC validation: the weight rule.

For epoch N = E+1 (E effective), in address order, a host gets
  preserved  = the weight of its ML nodes that kept serving inference through this PoC
               (poc_slot nodes of E; none when E is genesis)
  + count    = its last MsgPocCommit count, if accepted: the validators of E other than
               itself that took part in this PoC's validation (sent a verdict about anyone)
               hold at least half of the others' weight (quorum), and those of them holding
               more than half of *their* weight said "no fraud" (accepted without votes when
               no one else holds weight, e.g. a single-validator network). A validator that
               sent no verdict at all thus cannot veto everyone by its silence: with three
               equal hosts, one ML node down would otherwise refuse every commit and carry
               the old group over, the silent host's weight included
and then `collateral.adjust_weight`, then the power cap (poc.cap). Excluded: non-participants,
hosts INVALID now, hosts whose consensus key is tombstoned (double signing: they must register a
new key), and hosts with no seed commitment for N (they could not be held to their
validation duty). Each member's weight is split evenly over its declared ML nodes (remainder to
the first ones); nodes are assigned to the first registry model (by id) they serve; in each
model half of the nodes (rounded down), chosen by a hash of (epoch, host, model, node), keep
serving inference through the next PoC.

If no host ends with weight, the group of E carries over unchanged (same members and weights):
consensus must never be handed an empty validator set.

The group also fixes its unit-of-compute price: the weighted median of its members' proposals
(epochs.unit_price).
"""

from __future__ import annotations

import msgspec

from chain.app.collateral.state import adjust_weight
from chain.app.context import Context, u64
from chain.app.epochs import state as epochs
from chain.app.epochs.unit_price import group_price
from chain.app.evidence.state import is_tombstoned
from chain.app.models.params import ModelSpec
from chain.app.models.state import registry
from chain.app.params.state import get_params
from chain.app.participants.state import INVALID, Participant, get_participant
from chain.app.poc import state
from chain.app.poc.cap import apply_cap
from chain.app.poc.params import PocChainParams
from chain.app.reputation.score import reputation
from chain.crypto.hashing import blake3_256
from chain.store.kv import KVReader

SLOT_DOMAIN = b"gonka/poc-slot/v1\x00"


def accepted(store: KVReader, epoch: int, participant: str, current: dict[str, int],
             voters: set[str]) -> tuple[bool, int, int]:
    """(accepted, no-fraud weight, weight of the others that voted in this PoC) for
    `participant`'s commit; `voters` = `state.voters(store, epoch)`."""
    others = sum(w for a, w in current.items() if a != participant)
    voting = sum(w for a, w in current.items() if a != participant and a in voters)
    honest = sum(current.get(v.validator, 0) for v in state.validations(store, epoch, participant)
                 if not v.fraud and v.validator != participant)
    quorum = 2 * voting >= others and voting > 0
    return (others == 0 or (quorum and 2 * honest > voting)), honest, voting


def preserved_weights(store: KVReader, previous: int) -> dict[str, int]:
    if previous == 0:
        return {}
    out = {}
    for member in epochs.members(store, previous):
        kept = sum(n.weight for n in member.ml_nodes if n.poc_slot)
        if kept and member.weight > 0:
            out[member.address] = min(kept, member.weight)
    return out


def _slot_rank(epoch: int, address: str, model: str, node_id: str) -> bytes:
    return blake3_256(SLOT_DOMAIN + u64(epoch) + address.encode() + b"/" + model.encode() + b"/"
                      + node_id.encode())


def assign_nodes(epoch: int, participant: Participant, weight: int,
                 models: tuple[ModelSpec, ...]) -> tuple[tuple[str, ...],
                                                         tuple[epochs.NodeWeight, ...]]:
    """(models served, node weights) of a member with `weight` in `epoch`."""
    nodes = sorted(participant.ml_nodes, key=lambda n: n.node_id)
    if not nodes:
        return (), ()
    share, extra = divmod(weight, len(nodes))
    model_of: dict[str, str] = {}
    for model in models:
        for node in nodes:
            if node.node_id not in model_of and model.id in node.models:
                model_of[node.node_id] = model.id
    slots: set[str] = set()
    served = []
    for model in models:
        ids = [n.node_id for n in nodes if model_of.get(n.node_id) == model.id]
        if not ids:
            continue
        served.append(model.id)
        ids.sort(key=lambda i: _slot_rank(epoch, participant.address, model.id, i))
        slots.update(ids[: len(ids) // 2])
    node_weights = tuple(
        epochs.NodeWeight(node_id=n.node_id, model=model_of.get(n.node_id, ""),
                          weight=share + (1 if i < extra else 0), poc_slot=n.node_id in slots)
        for i, n in enumerate(nodes))
    return tuple(served), node_weights


def form_group(ctx: Context, new: int) -> None:
    store = ctx.store
    previous = new - 1
    current = epochs.weights(store, previous)
    preserved = preserved_weights(store, previous)
    commits = {c.participant: c for c in state.commits(store, new)}
    voted = state.voters(store, new)
    raw: dict[str, int] = {}
    for address in sorted(set(preserved) | set(commits)):
        participant = get_participant(store, address)
        reason = None
        if participant is None:
            reason = "not a participant"
        elif participant.status == INVALID:
            reason = "participant is INVALID"
        elif is_tombstoned(store, participant.validator_key):
            reason = "consensus key tombstoned for double signing"
        elif epochs.get_seed_commitment(store, new, address) is None:
            reason = "no seed commitment"
        if reason is not None:
            ctx.emit("poc_weight_refused", epoch=new, participant=address, reason=reason)
            continue
        weight = preserved.get(address, 0)
        commit = commits.get(address)
        if commit is not None:
            ok, honest, voting = accepted(store, new, address, current, voted)
            ctx.emit("poc_commit_verdict", epoch=new, participant=address, count=commit.count,
                     accepted=ok, honest_weight=honest, others_weight=voting)
            if ok:
                weight += commit.count
        if weight > 0:
            raw[address] = adjust_weight(store, address, weight, new)
    params = get_params(store, "poc", PocChainParams)
    capped = apply_cap({a: w for a, w in raw.items() if w > 0}, params.max_power_bps)
    models = registry(store)
    epoch = epochs.get_epoch(store, new)
    assert epoch is not None
    new_members = []
    for address, weight in sorted(capped.items()):
        participant = get_participant(store, address)
        assert participant is not None
        served, nodes = assign_nodes(new, participant, weight, models)
        new_members.append(epochs.GroupMember(
            address=address, weight=weight, reputation=reputation(store, address),
            validator_key=participant.validator_key, models=served, ml_nodes=nodes,
            seed_commitment=epochs.get_seed_commitment(store, new, address) or b""))
    if not new_members:
        new_members = [msgspec.structs.replace(m, ml_nodes=(), removed="")
                       for m in epochs.members(store, previous) if m.weight > 0]
        ctx.emit("poc_no_weight", epoch=new, carried_over=len(new_members))
    for member in new_members:
        epochs.put_member(store, new, member)
    total, per_model = epochs.totals(new_members)
    served_ids = {w.model for w in per_model}
    price = group_price(store, ((m.address, m.weight) for m in new_members),
                        epochs.epoch_params(store).default_unit_of_compute_price)
    epochs.put_group(store, epochs.EpochGroup(
        epoch=new, poc_start=epoch.poc_start, formed_height=ctx.height, total_weight=total,
        model_weights=per_model, models=tuple(m for m in models if m.id in served_ids),
        unit_of_compute_price=price))
    state.prune_before(store, previous)
    ctx.emit("epoch_group_formed", epoch=new, members=len(new_members), total_weight=total)
