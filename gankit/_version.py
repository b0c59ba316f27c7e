"""gankit's version: read here by training, checkpoints and the CLI (not from the face)."""

__version__ = "0.4.0"
