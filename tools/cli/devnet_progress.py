"""What `gonka devnet` shows while it starts and runs: start-up milestones and epoch progress.

`Progress` is the pure core. At each block the host's API node refreshes its view of the chain
(`ChainSnapshot`, api/node/chain_state.py); the devnet hands that snapshot and the broker's view
of the devnet ML node (`NodeView`) to `Progress.block`, which says what to show: milestones
(the host registered, weight obtained in an epoch, an ML-node failure, ready), lines for a
change of epoch stage or of what the ML node is doing, and the whole current state as one status
line, e.g.

    epoch 0: PoC generation for epoch 1, block 3/8 (height 22) | ML node: PoC generation

`Console` writes it: each line with the seconds since the devnet started. On a terminal the
status line is rewritten in place at every block and only milestones become lines; anywhere
else (a pipe, a log file) every change of stage or ML-node activity is a line of its own, so
that the output reads as a log. Nothing here waits, polls or does I/O besides writing.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from api.broker.broker import NodeView
from api.node.chain_state import ChainSnapshot, EpochInfo
from api.routing import eligible

POC_STAGES = {
    "sprint": "PoC generation",
    "commit_exchange": "PoC commit exchange",
    "poc_validation": "PoC validation",
    "set_new_validators": "new validator set",
}
POW_STATUS = {"GENERATING": "PoC generation", "VALIDATING": "PoC validation",
              "LOADING": "building the PoC model", "IDLE": "PoC idle"}
FAILURE_CHARS = 300


def stage_block(epoch: EpochInfo, height: int) -> tuple[int, int] | None:
    """(block, of blocks) of `height` within its PoC stage; None outside the PoC."""
    s = epoch.poc
    spans = {
        "sprint": (s.poc_start, s.sprint_end_exclusive - 1),
        "commit_exchange": (s.sprint_end_exclusive, s.commit_deadline),
        "poc_validation": (s.validation_start, s.validation_end),
        "set_new_validators": (s.validation_end + 1, s.set_new_validators),
    }
    span = spans.get(epoch.stage)
    if span is None:
        return None
    first, last = span
    return height - first + 1, last - first + 1


def stage_text(epoch: EpochInfo, height: int) -> str:
    """The epoch stage of `height` in words, with its block progress."""
    effective = epoch.effective_epoch
    upcoming = epoch.upcoming_epoch if epoch.upcoming_epoch is not None else effective + 1
    block = stage_block(epoch, height)
    if block is None:
        start, left = epoch.poc.poc_start, epoch.poc.poc_start - height
        when = f"in {left} block{'s' if left != 1 else ''}" if left > 0 else "starting"
        return f"epoch {effective}: inference; PoC of epoch {upcoming} at height {start}, {when}"
    return (f"epoch {effective}: {POC_STAGES[epoch.stage]} for epoch {upcoming}, "
            f"block {block[0]}/{block[1]}")


def mlnode_text(node: NodeView | None, model: str) -> str:
    """What the ML node is doing, as the broker last saw it."""
    if node is None:
        return "not declared"
    if node.reachable is None or (node.reachable and node.actual is None):
        return "not probed yet"
    if not node.reachable:
        return "unreachable"
    if node.actual == "INFERENCE":
        return f"serving {node.served_model}" if node.served_model else "starting inference"
    if node.actual == "POW":
        return POW_STATUS.get(node.pow_status or "", f"PoC ({node.pow_status})")
    if node.actual == "STOPPED" and node.intended == "INFERENCE":
        return f"starting inference of {model}"
    return (node.actual or "unknown").lower()


@dataclass(frozen=True)
class Update:
    """What one block changed. `events`: milestones, a line each on any output. `changes`: a
    new stage or ML-node activity, a line each where the status line is not rewritten.
    `status`: the current state on one line. `ready`: (epoch, host weight) the first time a
    request for the model would reach the host and its ML node serves it."""

    events: tuple[str, ...]
    changes: tuple[str, ...]
    status: str
    ready: tuple[int, int] | None = None


class Progress:
    """The devnet's progress, block by block: `block(snapshot, node)` -> `Update`."""

    def __init__(self, account: str, model: str) -> None:
        self.account = account
        self.model = model
        self.ready: tuple[int, int] | None = None
        self._registered = False
        self._stage: tuple[int, str, int] | None = None
        self._mlnode: str | None = None
        self._failure: str | None = None
        self._weight: tuple[int, int] | None = None

    def block(self, snapshot: ChainSnapshot, node: NodeView | None) -> Update:
        epoch, height = snapshot.epoch, snapshot.height
        events: list[str] = []
        changes: list[str] = []

        stage = stage_text(epoch, height)
        key = (epoch.effective_epoch, epoch.stage, epoch.poc.poc_start)
        if key != self._stage:
            self._stage = key
            changes.append(f"{stage} (height {height})")
        activity = mlnode_text(node, self.model)
        if activity != self._mlnode:
            self._mlnode = activity
            changes.append(f"ML node: {activity}")

        if not self._registered and self.account in snapshot.participants:
            self._registered = True
            events.append(f"host registered as a participant (height {height})")
        # Weight that counts for the model (the genesis group's, epoch 0, serves no model).
        weight = next((m.get("weight", 0) for m in snapshot.members
                       if m.get("address") == self.account
                       and self.model in (m.get("models") or ())), 0)
        if (epoch.effective_epoch, weight) != self._weight:
            if weight > 0:
                events.append(f"weight obtained: epoch {epoch.effective_epoch}, host weight "
                              f"{weight} for {self.model} (height {height})")
            elif self._weight is not None and self._weight[1] > 0:
                events.append(f"epoch {epoch.effective_epoch}: the host has no weight for "
                              f"{self.model} (height {height})")
            self._weight = (epoch.effective_epoch, weight)
        failure = node.failure if node is not None else None
        if failure and failure != self._failure:
            first = failure.strip().splitlines()[0] if failure.strip() else failure
            events.append(f"ML node failure: {first[:FAILURE_CHARS]}")
        self._failure = failure

        ready = None
        if self.ready is None:
            mine = [c for c in eligible(snapshot.members, self.model,
                                        poc_running=epoch.poc_running)
                    if c.address == self.account]
            serving = (node is not None and node.actual == "INFERENCE"
                       and node.served_model == self.model)
            if mine and serving:
                self.ready = ready = (epoch.effective_epoch, mine[0].weight)
                events.append(f"ready (height {height})")
        return Update(tuple(events), tuple(changes),
                      f"{stage} (height {height}) | ML node: {activity}", ready)


class Console:
    """Writes progress to `out`: lines stamped with the seconds since start, and on a terminal
    one status line rewritten in place (cleared before anything else is written)."""

    def __init__(self, out: TextIO | None = None, *, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self._clock = clock
        self._start = clock()
        self._status = ""

    def elapsed(self) -> float:
        return self._clock() - self._start

    def line(self, text: str) -> None:
        """A progress line: `  [  12.3s] text`."""
        self.text(f"  [{self.elapsed():6.1f}s] {text}")

    def text(self, text: str) -> None:
        """Plain text (any number of lines), below the status line's place."""
        self.clear()
        self.out.write(text + "\n")
        self._draw()

    def show(self, update: Update) -> None:
        for text in (update.events if self.tty else (*update.changes, *update.events)):
            self.line(text)
        if self.tty:
            self._status = update.status
            self.clear()
            self._draw()

    def clear(self) -> None:
        """Remove the status line (a terminal only) until the next `show`."""
        if self.tty and self._status:
            self.out.write("\r\x1b[K")
            self.out.flush()

    def _draw(self) -> None:
        if self.tty and self._status:
            width = shutil.get_terminal_size().columns - 1
            self.out.write(self._status[:width])
        self.out.flush()
