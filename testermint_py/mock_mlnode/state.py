"""The mock node's mutable scripted state: the current `MockScript` and who waits for a change.

One `ScriptHolder` per mock node, shared by its HTTP fault hook, its inference backend and its
PoC generator. Setting a script wakes every waiter (a disappeared node coming back, an idle
generator given more weight).
"""

from __future__ import annotations

from collections import Counter

import trio

from testermint_py.mock_mlnode.script import MockScript


class ScriptHolder:
    def __init__(self, script: MockScript) -> None:
        self._script = script
        self._changed = trio.Event()
        # Requests seen per path (besides /mock/...), for tests that check who called what.
        self.requests: Counter[str] = Counter()

    @property
    def current(self) -> MockScript:
        return self._script

    def set(self, script: MockScript) -> None:
        self._script = script
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        await self._changed.wait()

    async def wait_present(self) -> None:
        """Return once the script does not say the node has disappeared."""
        while self._script.disappeared:
            await self.wait_changed()
