"""Runnable demos (``python -m dmpc_core.demos.<name>``)."""
