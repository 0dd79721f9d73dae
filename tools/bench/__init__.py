"""Benchmarks: each prints our figure, a named baseline run in the same process, and their ratio.

They are not tests and make no pass/fail claim about time; targets are stated in the issues.
"""
