"""livematte: real-time per-person video matting with a per-person effect."""

__version__ = "0.1.0"
