"""Robot models: helpers that locate model files (URDF) for the compiled dynamics."""
