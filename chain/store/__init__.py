"""Persistence of a chain node: the application state (`state`, with the write overlays of `kv`)
and the block store (`blocks`), each its own SQLite file in WAL mode. No protocol rules live here.
"""
