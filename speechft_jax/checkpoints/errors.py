"""The error raised for unreadable, incomplete or mismatched checkpoints."""


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed, or does not fit the model (the message names what)."""
