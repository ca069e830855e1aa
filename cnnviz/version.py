"""The cnnviz version, recorded in every saved result."""

__version__ = "0.1.0"
