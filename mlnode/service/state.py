"""The ML node's mode: STOPPED, POW or INFERENCE, and which commands each mode accepts.

Everything that decides whether a command may run lives in the table below; the service shell
(`mlnode.service.node`) asks `transition` before doing anything and carries out the effects
only if it was allowed. A refused command changes nothing and gets 409 with the reason.
A failure (a crashed PoC task, a dead inference backend) returns the node to STOPPED and stays
recorded until the next command that starts or stops something.

Pure: no I/O, no clock, no trio.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class NodeMode(enum.Enum):
    STOPPED = "STOPPED"
    POW = "POW"
    INFERENCE = "INFERENCE"


class Action(enum.Enum):
    START_POW = "start PoC"                # POST /pow/init/generate, /pow/init/validate
    POW_COMMAND = "run PoC"                # POST /pow/phase/*, /pow/validate
    STOP_POW = "stop PoC"                  # POST /pow/stop
    START_INFERENCE = "start inference"    # POST /inference/up
    INFERENCE_COMMAND = "use inference"    # POST /inference/replay
    STOP_INFERENCE = "stop inference"      # POST /inference/down
    STOP = "stop"                          # POST /stop
    POW_FAILED = "PoC failed"              # the PoC session crashed
    INFERENCE_FAILED = "inference failed"  # the backend died or stopped answering


class Conflict(Exception):
    """A command the current mode refuses (HTTP 409); `mode` is the mode it was refused in."""

    def __init__(self, reason: str, mode: NodeMode) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mode = mode


_STOP_FIRST = "; POST /api/v1/stop first"
_SERVING = "the node is serving inference" + _STOP_FIRST
_POW_RUNNING = "the node is running PoC" + _STOP_FIRST
_POW_NOT_STARTED = ("PoC is not running; POST /api/v1/pow/init/generate or "
                    "/api/v1/pow/init/validate first")
_NOT_SERVING = "the node is not serving inference; POST /api/v1/inference/up first"

S, P, I = NodeMode.STOPPED, NodeMode.POW, NodeMode.INFERENCE  # noqa: E741

# (mode, action) -> the next mode, or the reason the action is refused in that mode.
TRANSITIONS: dict[tuple[NodeMode, Action], NodeMode | str] = {
    (S, Action.START_POW): P,
    (P, Action.START_POW): P,
    (I, Action.START_POW): "cannot start PoC: " + _SERVING,

    (S, Action.POW_COMMAND): "cannot run PoC: " + _POW_NOT_STARTED,
    (P, Action.POW_COMMAND): P,
    (I, Action.POW_COMMAND): "cannot run PoC: " + _SERVING,

    (S, Action.STOP_POW): S,
    (P, Action.STOP_POW): S,
    (I, Action.STOP_POW): I,          # nothing of PoC runs: a no-op

    (S, Action.START_INFERENCE): I,
    (P, Action.START_INFERENCE): "cannot start inference: " + _POW_RUNNING,
    (I, Action.START_INFERENCE): I,   # restarts the backend with the new model

    (S, Action.INFERENCE_COMMAND): "cannot use inference: " + _NOT_SERVING,
    (P, Action.INFERENCE_COMMAND): "cannot use inference: " + _POW_RUNNING,
    (I, Action.INFERENCE_COMMAND): I,

    (S, Action.STOP_INFERENCE): S,
    (P, Action.STOP_INFERENCE): P,    # no backend runs: a no-op
    (I, Action.STOP_INFERENCE): S,

    (S, Action.STOP): S,
    (P, Action.STOP): S,
    (I, Action.STOP): S,

    (S, Action.POW_FAILED): S,        # a failure reported after a stop changes nothing
    (P, Action.POW_FAILED): S,
    (I, Action.POW_FAILED): I,
    (S, Action.INFERENCE_FAILED): S,
    (P, Action.INFERENCE_FAILED): P,
    (I, Action.INFERENCE_FAILED): S,
}

# Actions that clear a recorded failure when accepted: the operator has moved on.
_CLEARS_FAILURE = {Action.START_POW, Action.START_INFERENCE, Action.STOP}


@dataclass(frozen=True)
class NodeStatus:
    mode: NodeMode = NodeMode.STOPPED
    failure: str | None = None


def transition(status: NodeStatus, action: Action, failure: str | None = None) -> NodeStatus:
    """The status after `action`, or Conflict. `failure` describes a *_FAILED action."""
    outcome = TRANSITIONS[(status.mode, action)]
    if isinstance(outcome, str):
        raise Conflict(outcome, status.mode)
    if action in (Action.POW_FAILED, Action.INFERENCE_FAILED):
        if outcome is status.mode:        # stale: that service was no longer running
            return status
        return NodeStatus(outcome, failure or action.value)
    return NodeStatus(outcome, None if action in _CLEARS_FAILURE else status.failure)
