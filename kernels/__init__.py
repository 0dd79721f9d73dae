"""Triton kernels of the PoC transformer batch, each tested against its torch reference."""
