"""Baselines that solve the same problems as dmpc's solvers, for agreement tests and benchmarks."""
