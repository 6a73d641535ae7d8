"""Robot models on the Python side: paths to robot descriptions and PyTorch twins of the core
models (the compiled models themselves live in :mod:`dmpc_core._core`)."""
