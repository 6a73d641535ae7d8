"""Shared pytest setup: make the helpers in test/ (factory.py, tool_module.py) importable."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
