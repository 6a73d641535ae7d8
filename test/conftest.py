"""Shared pytest setup: make test/ helpers (factory.py) importable."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
