"""A mock ML node for fast tests (DESIGN.md section 7): the real node's HTTP contract and state
machine, no model. PoC distances come from BLAKE3, inference from a hash-defined greedy language
model; weight, PoC fraud (made-up and duplicated nonces), delays, tampered outputs (wrong
tokens or logprobs), invalid JSON, cut streams, per-model responses, start failures, crashes and
disappearing are scripted (`MockScript`), at start and through POST /mock/script.

In-process: `url = await nursery.start(serve_mock_mlnode, config)`; as a process:
`python -m testermint_py.mock_mlnode --port N [--script FILE]`.
"""

from testermint_py.mock_mlnode.script import MockScript
from testermint_py.mock_mlnode.server import DEFAULT_CONFIG, serve_mock_mlnode

__all__ = ["DEFAULT_CONFIG", "MockScript", "serve_mock_mlnode"]
