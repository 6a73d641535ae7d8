"""Learned global policies (runtime controllers trained by guided policy search)."""
