"""Embedded simulators (no ROS): the plant integrates a core dynamics model at the physics rate."""
from dmpc_core.sim.plant import Plant, PlantSettings, simulate_closed_loop

__all__ = ["Plant", "PlantSettings", "simulate_closed_loop"]
