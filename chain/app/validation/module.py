"""The validation module as the app sees it (being built)."""

from __future__ import annotations

from chain.app.context import Module

MODULE = Module(name="validation")
