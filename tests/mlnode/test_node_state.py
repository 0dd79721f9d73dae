"""The ML node's mode table (mlnode/service/state.py), driven directly."""

from __future__ import annotations

import itertools

import pytest

from mlnode.service.state import TRANSITIONS, Action, Conflict, NodeMode, NodeStatus, transition

S, P, I = NodeMode.STOPPED, NodeMode.POW, NodeMode.INFERENCE  # noqa: E741


def test_every_mode_answers_every_action():
    assert set(TRANSITIONS) == set(itertools.product(NodeMode, Action))


@pytest.mark.parametrize("mode, action, reason", [
    (I, Action.START_POW, "cannot start PoC: the node is serving inference; "
                          "POST /api/v1/stop first"),
    (P, Action.START_INFERENCE, "cannot start inference: the node is running PoC; "
                                "POST /api/v1/stop first"),
    (S, Action.POW_COMMAND, "cannot run PoC: PoC is not running; POST "
                            "/api/v1/pow/init/generate or /api/v1/pow/init/validate first"),
    (S, Action.INFERENCE_COMMAND, "cannot use inference: the node is not serving inference; "
                                  "POST /api/v1/inference/up first"),
])
def test_conflicting_commands_are_refused_with_the_reason(mode, action, reason):
    with pytest.raises(Conflict) as refused:
        transition(NodeStatus(mode), action)
    assert (refused.value.reason, refused.value.mode) == (reason, mode)


def test_a_failure_stops_the_node_and_stays_until_the_next_start_or_stop():
    failed = transition(NodeStatus(I), Action.INFERENCE_FAILED, "backend died")
    assert failed == NodeStatus(S, "backend died")
    # Reading and no-op commands keep the record
    assert transition(failed, Action.STOP_POW) == failed
    assert transition(failed, Action.STOP_INFERENCE) == failed
    # Starting or stopping clears it
    assert transition(failed, Action.START_POW) == NodeStatus(P)
    assert transition(failed, Action.STOP) == NodeStatus(S)


def test_a_failure_of_something_no_longer_running_changes_nothing():
    assert transition(NodeStatus(P), Action.INFERENCE_FAILED, "late") == NodeStatus(P)
    assert transition(NodeStatus(I), Action.POW_FAILED, "late") == NodeStatus(I)
    assert transition(NodeStatus(S, "x"), Action.POW_FAILED, "late") == NodeStatus(S, "x")
