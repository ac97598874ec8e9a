"""The SDK version sent in ``hello`` (kept equal to pyproject's version)."""

__version__ = "0.1.0"
