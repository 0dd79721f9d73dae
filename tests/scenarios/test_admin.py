"""Acceptance scenarios: the admin API through the harness's typed client (gonka-testermint.md
section 5, item 33, and the unit-of-compute and model proposals of section 3.24): ML node add,
batch add, list, enable/disable and delete on a running host; proposals that reach the chain."""

from __future__ import annotations

import pytest

from api.broker.state import NodeSpec
from testermint_py.clients import ApiRefused
from testermint_py.network import MODEL, Network
from tests.scenarios.conftest import running_network

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    with running_network(tmp_path_factory.mktemp("admin"), n=2) as network:
        yield network


async def test_ml_nodes_are_added_listed_disabled_and_removed(net: Network):
    admin = net.admin_client(0)
    # Given the host's one mock ML node, serving,
    [mock] = await admin.nodes()
    assert (mock.node_id, mock.actual, mock.served_model) == ("mock", "INFERENCE", MODEL)
    # when an operator adds one node, then a batch holding a duplicate of it and a new one,
    spare = NodeSpec(node_id="spare", url="http://127.0.0.1:9", models=(MODEL,))
    added = await admin.add_node(spare)
    assert (added.node_id, added.enabled) == ("spare", True)
    batch = await admin.add_nodes([spare, NodeSpec(node_id="spare2", url="http://127.0.0.1:9",
                                                   models=(MODEL,))])
    assert [n.node_id for n in batch.added] == ["spare2"]
    assert [r.node_id for r in batch.refused] == ["spare"]
    # then all three are listed, the unreachable ones found so,
    listed = {n.node_id: n for n in await admin.nodes()}
    assert set(listed) == {"mock", "spare", "spare2"}
    # a disabled node keeps its place until the next PoC (the host earned its weight with it),
    disabled = await admin.disable("spare")
    assert (disabled.enabled, disabled.active) == (False, True)
    assert (await admin.enable("spare")).enabled is True
    # and removed nodes are gone; an unknown one is a 404.
    for node_id in ("spare", "spare2"):
        assert (await admin.delete_node(node_id)).node_id == node_id
    assert [n.node_id for n in await admin.nodes()] == ["mock"]
    with pytest.raises(ApiRefused) as refused:
        await admin.node("spare")
    assert refused.value.status == 404


async def test_price_and_model_proposals_reach_the_chain(net: Network):
    admin = net.admin_client(1)
    account = net.participants[1].account
    # A unit-of-compute price proposal in ugonka is recorded in ngonka for the host;
    proposed = await admin.propose_price(127, "ugonka")
    assert (proposed.participant, proposed.price) == (account, 127_000)
    on_chain = await net.query("epochs/unit_of_compute_price_proposal", participant=account)
    assert on_chain["price"] == 127_000
    assert (await admin.price_proposal())["price"] == 127_000
    # a bad denomination is a 400;
    with pytest.raises(ApiRefused) as refused:
        await admin.propose_price(1, "satoshi")
    assert refused.value.status == 400
    # and a model proposal becomes a governance proposal that would add the model.
    model = await admin.propose_model("llama", 10)
    assert model.proposal_id is not None
    assert {m.id for m in model.models} == {MODEL, "llama"}
    proposal = await net.query("gov/proposal", id=str(model.proposal_id))
    assert proposal["title"] == "llama model proposal"
