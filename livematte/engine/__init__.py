"""Engines turn frames into per-person mattes behind one protocol (see base.py)."""
