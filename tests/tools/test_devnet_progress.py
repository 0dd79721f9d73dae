"""The devnet's progress display (tools/cli/devnet_progress.py), driven block by block with the
chain snapshots and ML-node views a devnet goes through: its stages in order, milestones once,
the ready moment, a line per change in a log, one status line rewritten on a terminal."""

from __future__ import annotations

import io
import itertools

from api.broker.broker import NodeView
from api.node.chain_state import ChainSnapshot, EpochInfo, InferenceParams, Participant, PocStages
from tools.cli.devnet_progress import Console, Progress, stage_text

HOST = "gonka1host"
MODEL = "gonka/tiny-llama"


def stages(poc_start: int) -> PocStages:
    # The devnet profile: Sprint 8, exchange 3, validation 6, new validators 2, epoch 40.
    return PocStages(poc_start=poc_start, sprint_end_exclusive=poc_start + 8,
                     commit_deadline=poc_start + 11, validation_start=poc_start + 12,
                     validation_end=poc_start + 17, set_new_validators=poc_start + 19,
                     claim=poc_start + 20, next_poc_start=poc_start + 40)


def stage_of(s: PocStages, height: int) -> str:
    if s.poc_start <= height < s.sprint_end_exclusive:
        return "sprint"
    if s.poc_start <= height <= s.commit_deadline:
        return "commit_exchange"
    if s.validation_start <= height <= s.validation_end:
        return "poc_validation"
    if s.validation_end < height <= s.set_new_validators:
        return "set_new_validators"
    return "inference"


def snapshot(height: int, *, registered: bool = True, weight: int = 0) -> ChainSnapshot:
    """The devnet chain at `height`: epoch 0 until the PoC at 20 ends (39), then epoch 1."""
    effective = 0 if height < 39 else 1
    poc = stages(20 if height < 39 else 60)
    stage = stage_of(poc, height)
    upcoming = 1 if 20 <= height < 39 else None
    members = [{"address": HOST, "weight": weight, "models": [MODEL] if effective else [],
                "ml_nodes": [{"node_id": "local", "model": MODEL, "weight": weight,
                              "poc_slot": False}]}]
    return ChainSnapshot(
        chain_id="gonka-devnet", height=height, time_ns=height * 10**9,
        epoch=EpochInfo(effective_epoch=effective, effective_poc_start=0 if effective == 0
                        else 20, upcoming_epoch=upcoming, poc=poc, stage=stage),
        group={"group": {}, "members": members}, params=InferenceParams(), prices={},
        participants={HOST: Participant(HOST, "http://127.0.0.1:9000")} if registered else {})


def node(actual: str | None, *, served: str | None = None, pow_status: str | None = None,
         intended: str = "INFERENCE", failure: str | None = None) -> NodeView:
    return NodeView(node_id="local", url="http://127.0.0.1:8080", models=(MODEL,),
                    max_concurrent=64, enabled=True, active=True, intended=intended,
                    intended_detail=None, actual=actual, pow_status=pow_status,
                    served_model=served, reachable=actual is not None, in_flight=0,
                    failure=failure)


def serving() -> NodeView:
    return node("INFERENCE", served=MODEL)


def test_stage_text_counts_the_blocks_of_each_stage():
    assert stage_text(snapshot(1).epoch, 1) == \
        "epoch 0: inference; PoC of epoch 1 at height 20, in 19 blocks"
    assert stage_text(snapshot(19).epoch, 19) == \
        "epoch 0: inference; PoC of epoch 1 at height 20, in 1 block"
    assert stage_text(snapshot(22).epoch, 22) == \
        "epoch 0: PoC generation for epoch 1, block 3/8"
    assert stage_text(snapshot(31).epoch, 31) == \
        "epoch 0: PoC commit exchange for epoch 1, block 4/4"
    assert stage_text(snapshot(32).epoch, 32) == "epoch 0: PoC validation for epoch 1, block 1/6"
    assert stage_text(snapshot(38).epoch, 38) == \
        "epoch 0: new validator set for epoch 1, block 1/2"
    assert stage_text(snapshot(45).epoch, 45) == \
        "epoch 1: inference; PoC of epoch 2 at height 60, in 15 blocks"


def run_devnet(progress: Progress, console: Console) -> list[tuple[int, int] | None]:
    """Heights 1..65 of a devnet: registered at 3, weight from epoch 1 (height 39), the ML node
    serving before the PoC, in PoC during it, serving again from height 40."""
    readies = []
    for height in range(1, 66):
        poc = 20 <= height < 40 or height >= 60
        view = (node("POW", pow_status="GENERATING", intended="POC_GENERATE") if poc
                else serving() if height >= 2 else node("STOPPED"))
        update = progress.block(snapshot(height, registered=height >= 3,
                                         weight=100 if height >= 39 else 0), view)
        console.show(update)
        readies.append(update.ready)
    return readies


def test_a_log_gets_a_line_per_change_and_each_milestone_once_in_order():
    out = io.StringIO()
    progress = Progress(HOST, MODEL)
    clock = itertools.chain([100.0], itertools.repeat(112.5)).__next__    # started at 100
    readies = run_devnet(progress, Console(out, tty=False, clock=clock))
    lines = out.getvalue().splitlines()
    assert all(line.startswith("  [  12.5s] ") for line in lines)
    texts = [line.removeprefix("  [  12.5s] ") for line in lines]
    assert texts == [
        "epoch 0: inference; PoC of epoch 1 at height 20, in 19 blocks (height 1)",
        "ML node: starting inference of gonka/tiny-llama",
        "ML node: serving gonka/tiny-llama",
        "host registered as a participant (height 3)",
        "epoch 0: PoC generation for epoch 1, block 1/8 (height 20)",
        "ML node: PoC generation",
        "epoch 0: PoC commit exchange for epoch 1, block 1/4 (height 28)",
        "epoch 0: PoC validation for epoch 1, block 1/6 (height 32)",
        "epoch 0: new validator set for epoch 1, block 1/2 (height 38)",
        "epoch 1: inference; PoC of epoch 2 at height 60, in 21 blocks (height 39)",
        "weight obtained: epoch 1, host weight 100 for gonka/tiny-llama (height 39)",
        "ML node: serving gonka/tiny-llama",
        "ready (height 40)",
        "epoch 1: PoC generation for epoch 2, block 1/8 (height 60)",
        "ML node: PoC generation",
    ]
    # ready once: the first block where the host has weight and its ML node serves
    assert [r for r in readies if r] == [(1, 100)] and readies[39] == (1, 100)
    assert progress.ready == (1, 100)


def test_a_terminal_gets_milestones_as_lines_and_the_stage_as_one_rewritten_line(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")    # the status line is cut at the terminal's width
    out = io.StringIO()
    run_devnet(Progress(HOST, MODEL), Console(out, tty=True, clock=lambda: 0.0))
    text = out.getvalue()
    lines = text.split("\n")
    # Only milestones end with a newline; the status line is rewritten in place at each block.
    assert [line.rsplit("\r\x1b[K", 1)[-1] for line in lines[:-1]] == [
        "  [   0.0s] host registered as a participant (height 3)",
        "  [   0.0s] weight obtained: epoch 1, host weight 100 for gonka/tiny-llama (height 39)",
        "  [   0.0s] ready (height 40)",
    ]
    assert text.count("\r\x1b[K") >= 65
    assert lines[-1].endswith(
        "epoch 1: PoC generation for epoch 2, block 6/8 (height 65) | ML node: PoC generation")


def test_an_ml_node_failure_is_a_milestone_once():
    out = io.StringIO()
    progress = Progress(HOST, MODEL)
    console = Console(out, tty=False, clock=lambda: 0.0)
    failed = node("STOPPED", failure="inference failed to start: vLLM exited with code 1\nlog")
    for height in (1, 2, 3):
        console.show(progress.block(snapshot(height), failed))
    assert out.getvalue().count("ML node failure: inference failed to start: vLLM exited "
                                "with code 1\n") == 1


def test_a_host_without_weight_for_the_model_is_not_ready():
    # Epoch 0 is the genesis group: the validator has weight there, but no model.
    progress = Progress(HOST, MODEL)
    update = progress.block(snapshot(5, weight=100), serving())
    assert update.ready is None and not any("weight" in e for e in update.events)
    # An unreachable ML node is not serving, even in an epoch with weight.
    update = progress.block(snapshot(45, weight=100), node(None))
    assert update.ready is None and "ML node: unreachable" in update.changes
    assert progress.block(snapshot(46, weight=100), serving()).ready == (1, 100)
