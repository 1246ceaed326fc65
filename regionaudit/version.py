"""The release version, in a module of its own so that every stage can name it without importing
the package's `__init__` (which would make a lower module import the package above it)."""

__version__ = "0.1.0"
