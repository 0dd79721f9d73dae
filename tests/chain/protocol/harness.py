"""A protocol network driven block by block through GonkaApp (no consensus, no network): hosts
with account keys and consensus keys, the devnet params profile (overridable), and helpers that
send the protocol's messages and run whole epochs. Tests use only txs, blocks and queries.

Block h has time T0 + h seconds, so time-windowed rules (dynamic pricing) see real seconds.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from chain.app import abci
from chain.app.profiles import DEVNET_MODEL, profile_params
from chain.crypto import ed25519, secp256k1
from chain.types.genesis import ConsensusParams, Genesis, GenesisAccount, GenesisValidator
from chain.types.inference import seed_commitment
from chain.types.msgs import (
    MlNodeSpec,
    MsgPocCommit,
    MsgPocValidation,
    MsgRegisterParticipant,
    MsgSubmitSeed,
)
from tests.chain.app_builders import Chain, signed_tx
from tests.chain.builders import CHAIN_ID, T0

GONKA = 10**9
SECOND = 10**9
MODEL = DEVNET_MODEL


class Host:
    """A host: its account key, its consensus key, and the seeds it committed per epoch."""

    def __init__(self, index: int) -> None:
        self.key = secp256k1.PrivateKey(bytes([40 + index]) * 32)
        self.consensus = ed25519.PrivateKey(bytes([80 + index]) * 32)
        self.seeds: dict[int, bytes] = {}
        self.name = f"host{index}"

    @property
    def address(self) -> str:
        return self.key.address

    def seed(self, epoch: int) -> bytes:
        if epoch not in self.seeds:
            self.seeds[epoch] = os.urandom(32)
        return self.seeds[epoch]

    def __repr__(self) -> str:
        return f"<{self.name} {self.address}>"


def merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for module, values in overrides.items():
        out.setdefault(module, {}).update(values)
    return out


def protocol_genesis(hosts: Sequence[Host], *, genesis_validators: Sequence[Host] | None = None,
                     balance: int = 1_000_000 * GONKA, params: dict | None = None,
                     extra_accounts: Iterable[tuple[str, int]] = ()) -> Genesis:
    """Every host funded; `genesis_validators` (default: all hosts) are epoch 0's validators
    with power 10 each; app_params = the devnet profile updated by `params`."""
    validators = hosts if genesis_validators is None else genesis_validators
    return Genesis(
        chain_id=CHAIN_ID, genesis_time_ns=T0,
        consensus=ConsensusParams(max_tx_timeout_blocks=1000),
        validators=tuple(GenesisValidator(name=h.name, pubkey=h.consensus.public_key, power=10,
                                          operator=h.address) for h in validators),
        accounts=tuple(GenesisAccount(address=h.address, balance=balance) for h in hosts)
        + tuple(GenesisAccount(address=a, balance=b) for a, b in extra_accounts),
        app_params=merge(profile_params("devnet"), params or {}),
    )


class Net(Chain):
    """The app plus protocol helpers. `run` commits a block; `send` runs one block with txs and
    returns their results; `ok` asserts they succeeded."""

    def __init__(self, path: Path, hosts: Sequence[Host], **genesis_kw) -> None:
        self.hosts = list(hosts)
        super().__init__(path, protocol_genesis(hosts, **genesis_kw))
        self._memo = 0

    def block(self, txs=(), *, app_hash=None, time_ns=None):
        height = self.height + 1
        return super().block(txs, app_hash=app_hash,
                             time_ns=T0 + height * SECOND if time_ns is None else time_ns)

    def now_ns(self) -> int:
        """The block time of the next block: a fresh request time for an inference sent in it."""
        return T0 + (self.height + 1) * SECOND

    def tx(self, key, *msgs) -> bytes:
        # A fresh memo makes each tx unique, so the same message can be sent twice.
        self._memo += 1
        return signed_tx(*msgs, key=key, timeout_height=self.height + 100, memo=str(self._memo))

    def send(self, *pairs) -> list[abci.TxResult]:
        """One block with the txs (key, msg) or raw bytes; their results."""
        txs = [p if isinstance(p, bytes) else self.tx(p[0], p[1]) for p in pairs]
        return list(self.run(txs).tx_results)

    def ok(self, *pairs) -> list[abci.TxResult]:
        results = self.send(*pairs)
        for r in results:
            assert r.code == abci.OK, r.log
        return results

    # -- queries -------------------------------------------------------------------------

    def epoch_info(self) -> dict:
        return self.query("epochs/current", at_height=str(self.height))

    def effective(self) -> int:
        return self.epoch_info()["effective_epoch"]

    def group(self, epoch: int) -> dict:
        return self.query("epochs/group", epoch=str(epoch))

    def weights(self, epoch: int) -> dict[str, int]:
        return {m["address"]: m["weight"] for m in self.group(epoch)["members"]}

    def validator_powers(self) -> dict[str, int]:
        return {v["operator"]: v["power"] for v in self.query("validators/set")}

    def participant(self, host: Host) -> dict:
        return self.query("participants/participant", address=host.address)

    # -- protocol steps ------------------------------------------------------------------

    def register(self, *hosts: Host, models: Sequence[str] = (MODEL,), nodes: int = 1) -> None:
        msgs = [(h.key, MsgRegisterParticipant(
            participant=h.address, inference_url=f"http://{h.name}.example:9000",
            validator_key=h.consensus.public_key,
            ml_nodes=tuple(MlNodeSpec(node_id=f"node{i}", models=tuple(models))
                           for i in range(nodes)))) for h in hosts]
        self.ok(*msgs)

    def run_to(self, height: int) -> None:
        """Commit empty blocks until the last committed height is `height`."""
        assert height >= self.height, (height, self.height)
        self.run_until(height)

    def poc(self) -> dict:
        """Stage heights of the running or next PoC."""
        return self.epoch_info()["poc"]

    def start_next_poc(self) -> int:
        """Run to the block after the next PoC start; the upcoming epoch's index."""
        info = self.epoch_info()
        if info["upcoming_epoch"] is None:
            self.run_to(info["poc"]["poc_start"])
        return self.epoch_info()["upcoming_epoch"]

    def commit_seeds(self, epoch: int, hosts: Sequence[Host]) -> None:
        self.ok(*[(h.key, MsgSubmitSeed(participant=h.address, epoch=epoch,
                                        commitment=seed_commitment(h.address, epoch,
                                                                   h.seed(epoch))))
                  for h in hosts])

    def commit_poc(self, epoch: int, counts: dict[Host, int]) -> None:
        self.ok(*[(h.key, MsgPocCommit(participant=h.address, epoch=epoch, count=c,
                                       root=bytes([i]) * 32))
                  for i, (h, c) in enumerate(counts.items())])

    def validate_poc(self, epoch: int, verdicts: dict[tuple[Host, Host], bool]) -> None:
        """verdicts[(validator, participant)] = fraud."""
        self.ok(*[(v.key, MsgPocValidation(validator=v.address, participant=p.address,
                                           epoch=epoch, fraud=fraud, checked=10,
                                           failed=10 if fraud else 0))
                  for (v, p), fraud in verdicts.items()])

    def epoch(self, counts: dict[Host, int], *, validators: Sequence[Host] | None = None,
              fraud: Iterable[Host] = (), seeds: Sequence[Host] | None = None) -> int:
        """Run a whole PoC: seeds, commits of `counts`, every current validator (default: every
        member of the effective group among self.hosts) votes on every other committer
        (fraud for those in `fraud`), then run to the switch. Returns the new epoch index."""
        epoch = self.start_next_poc()
        stages = self.poc()
        self.commit_seeds(epoch, list(counts) if seeds is None else seeds)
        self.commit_poc(epoch, counts)
        self.run_to(stages["validation_start"] - 1)
        if validators is None:
            current = self.weights(self.effective())
            validators = [h for h in self.hosts if current.get(h.address, 0) > 0]
        fraud = set(fraud)
        verdicts = {(v, p): p in fraud for v in validators for p in counts if v is not p}
        if verdicts:
            self.validate_poc(epoch, verdicts)
        self.run_to(stages["set_new_validators"])
        assert self.effective() == epoch
        return epoch


# -- inference requests (appended for the inference tests; usable by any module's tests) -------

DEVELOPER = secp256k1.PrivateKey(bytes([99]) * 32)


class InferenceRequest:
    """The Start and Finish of one request, signed as its developer, transfer agent and executor
    would sign them."""

    def __init__(self, start, finish) -> None:
        self.start, self.finish = start, finish

    @property
    def id(self) -> bytes:
        return self.start.inference_id


def inference_request(ta: Host, executor: Host, *, n: int = 0, model: str = MODEL,
                      developer: secp256k1.PrivateKey = DEVELOPER, prompt_tokens: int = 100,
                      max_tokens: int = 500, finish_prompt_tokens: int | None = None,
                      completion_tokens: int = 200, ta_key: secp256k1.PrivateKey | None = None,
                      executor_key: secp256k1.PrivateKey | None = None,
                      timestamp_ns: int | None = None) -> InferenceRequest:
    """Request number `n` of `developer`, routed by `ta` to `executor` (keys default to theirs;
    the Finish reports `finish_prompt_tokens`, default `prompt_tokens`). The request time is
    `timestamp_ns`, default T0 + 1000 + n ns: inside the chain's request window (300 s) only
    up to block ~300; later, pass a fresh one (Net.now_ns())."""
    from chain.crypto.hashing import blake3_256
    from chain.types.inference import (
        execution_sign_bytes,
        request_sign_bytes,
        transfer_sign_bytes,
    )
    from chain.types.msgs import MsgFinishInference, MsgStartInference

    prompt_hash = blake3_256(f"prompt {n}".encode())
    ts = T0 + 1_000 + n if timestamp_ns is None else timestamp_ns
    inference_id = developer.sign(request_sign_bytes(prompt_hash, ts, ta.address))
    transfer_signature = (ta_key or ta.key).sign(
        transfer_sign_bytes(prompt_hash, ts, ta.address, executor.address, model))
    start = MsgStartInference(
        transfer_agent=ta.address, inference_id=inference_id, requested_by=developer.address,
        requester_pubkey=developer.public_key, executor=executor.address, model=model,
        prompt_hash=prompt_hash, prompt_tokens=prompt_tokens, max_tokens=max_tokens,
        request_timestamp_ns=ts, transfer_signature=transfer_signature)
    response_hash = blake3_256(f"response {n}".encode())
    reported = prompt_tokens if finish_prompt_tokens is None else finish_prompt_tokens
    executor_signature = (executor_key or executor.key).sign(execution_sign_bytes(
        prompt_hash, ts, ta.address, executor.address, model, response_hash, reported,
        completion_tokens))
    finish = MsgFinishInference(
        executor=executor.address, inference_id=inference_id, requested_by=developer.address,
        requester_pubkey=developer.public_key, transfer_agent=ta.address, model=model,
        prompt_hash=prompt_hash, request_timestamp_ns=ts, transfer_signature=transfer_signature,
        response_hash=response_hash, prompt_tokens=reported,
        completion_tokens=completion_tokens, executor_signature=executor_signature)
    return InferenceRequest(start, finish)


# -- supply-checked net (moved here from test_rewards; usable by any module's tests) ------------

# Five PoC counts within the 25% power cap, so the group weights are exactly these counts.
COUNTS = (100, 110, 120, 130, 140)


def coin_events(events) -> int:
    """Minted minus burned, from a list of events."""
    delta = 0
    for event in events:
        if event.type in ("mint", "burn"):
            amount = int(dict((a.key, a.value) for a in event.attributes)["amount"])
            delta += amount if event.type == "mint" else -amount
    return delta


class CheckedNet(Net):
    """A Net that checks, for every committed block, supply change == mints - burns of that
    block (its own events and its txs'); plus rewards helpers and `poke` (state injection)."""

    def run(self, txs=()):
        before = self.supply()
        result = super().run(txs)
        events = list(result.events) + [e for r in result.tx_results for e in r.events]
        after = self.supply()
        assert after - before == coin_events(events), (self.height, before, after)
        return result

    def supply(self) -> int:
        return self.query("bank/supply")["amount"]

    def settlement(self, host: Host) -> dict | None:
        import msgspec

        result = self.app.query("rewards/settlement", {"address": host.address})
        return msgspec.json.decode(result.value) if result.code == 0 else None

    def claim(self, host: Host, epoch: int, seed: bytes | None = None) -> abci.TxResult:
        from chain.types.msgs import MsgClaimRewards

        return self.send((host.key, MsgClaimRewards(
            participant=host.address, epoch=epoch,
            seed=host.seed(epoch) if seed is None else seed)))[0]

    def poke(self, change) -> None:
        """Commit one empty block in which `change(ctx)` also ran after the end-block hooks:
        the test's stand-in for state other modules (inference, validation) would produce.
        (Not supply-checked: `change` may move coins without events.)"""
        from chain.app.context import Context

        block = self.block([])
        self.app.finalize_block(block)
        pending = self.app._pending  # noqa: SLF001 - test-only state injection
        ctx = Context(store=pending.overlay, chain_id=self.genesis.chain_id,
                      height=block.header.height, time_ns=block.header.time_ns,
                      dispatch=self.app._dispatch)  # noqa: SLF001
        change(ctx)
        self.app.commit()
        self.last_block = block
