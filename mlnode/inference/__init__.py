"""Inference on the ML node: a real vLLM subprocess, its proxy, teacher-forced replay for
validation, the pure validation score, and tiny local models for tests (no downloads, ever)."""
