"""envlock: lock, replay and audit the whole stack of a machine-learning environment."""

__version__ = "0.1.0"
