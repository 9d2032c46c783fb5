"""Stability-index analysis of displacement-hosting locations."""
__version__ = "0.1.0"
