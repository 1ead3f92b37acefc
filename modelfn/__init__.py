"""modelfn: serverless inference functions for PyTorch models."""

__version__ = "0.1.0"
