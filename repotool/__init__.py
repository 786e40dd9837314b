"""repotool: the release toolchain of the pS-Performance Toolkit."""

__version__ = "0.1.0"
