"""Benchmarks a person can rerun, each printing its ratio."""
