"""Benchmarks run by `make bench`; each module prints the figures its issue names."""
