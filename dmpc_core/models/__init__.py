"""Pure-Python / PyTorch model implementations (the compiled ones live in dmpc_core._core)."""
