"""Simulation side of narrowgen: bit-exact golden models (``sim.golden``) and co-simulation."""
