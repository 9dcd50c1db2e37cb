"""dllint: finds the silent bugs of PyTorch training code."""

__version__ = "0.1.0"
