"""Deterministic simulation of four validators (tests/chain/sim/network.py).

Every seed runs a lossy, reordering, duplicating network that heals, one validator that crashes
(losing or tearing what it had not fsynced) and restarts from its WAL, sign state and block store,
and on a third of the seeds a Byzantine validator that equivocates on every proposal and vote.
Each seed checks agreement (one block and one app hash per height), that no honest validator ever
signs twice for one height/round/step, and progress to 5 heights once the network heals.

200 seeds by default; GONKA_SIM_SEEDS=5000 runs more. A failing seed prints how to replay it.
"""

from __future__ import annotations

import os

import pytest

from chain.consensus.vote_set import verify_commit
from chain.types.evidence import verify_duplicate_vote
from tests.chain.sim.network import CHAIN_ID, InvariantViolated, SimConfig, Simulation

SEEDS = int(os.environ.get("GONKA_SIM_SEEDS", "200"))
FIRST_SEED = int(os.environ.get("GONKA_SIM_FIRST_SEED", "0"))


def run_seed(config: SimConfig):
    try:
        return Simulation(config).run()
    except InvariantViolated as e:
        pytest.fail(f"seed {config.seed} failed: {e}\n  config: {config}\n  replay: "
                    f"GONKA_SIM_FIRST_SEED={config.seed} GONKA_SIM_SEEDS=1 python -m pytest "
                    f"{__file__} -k seeds", pytrace=False)


@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + SEEDS))
def test_seeds(seed):
    result = run_seed(SimConfig.random(seed))
    assert min(result.heights) >= 5 and result.restarts == 1


def test_a_seed_replays_exactly():
    # Given one seed, when it runs twice, then every step taken is the same, in the same order.
    config = SimConfig.random(11)
    first, second = Simulation(config).run(), Simulation(config).run()
    assert first.trace == second.trace and first.steps == second.steps
    assert Simulation(SimConfig.random(12)).run().trace != first.trace


def test_the_faults_are_real_crashes_lose_and_tear_unsynced_wal_bytes():
    # Across a handful of seeds, crashed validators restarted from torn WALs and replayed them.
    sims = [Simulation(SimConfig.random(seed)) for seed in range(20)]
    for sim in sims:
        sim.run()
    assert sum(s.torn_tails for s in sims) > 0
    assert sum(s.replayed_events for s in sims) > 0
    assert sum(s.restarts for s in sims) == 20


def test_a_byzantine_double_signer_ends_up_as_evidence_on_chain():
    # Given validator 2 double-signs every proposal and vote on a calm network,
    config = SimConfig(seed=5, byzantine=2, crash=False, drop=0.0, duplicate=0.0,
                       heal_at_ms=0, heights=4)
    sim = Simulation(config)
    sim.run()
    # then blocks carry DuplicateVoteEvidence against it, and only against it,
    traitor = sim.nodes[2].key
    store = sim.nodes[0].store
    evidence = [e for h in range(1, store.height() + 1) for e in store.load_block(h).evidence]
    assert evidence and {e.validator for e in evidence} == {traitor.id}
    for e in evidence:
        verify_duplicate_vote(CHAIN_ID, e, traitor.public_key)
    # and the honest validators still agree and committed only blocks proven by their commits.
    for node in sim.nodes:
        assert node.store.height() >= 4
    vset = sim.nodes[0].driver.core.chain.validators  # no validator changes in this run
    for h in range(1, 4):
        block = store.load_block(h + 1)
        verify_commit(CHAIN_ID, vset, h, block.header.last_block_id, block.last_commit)
