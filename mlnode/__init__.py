"""The ML node: PoC generation and validation, inference through vLLM and its replay."""
