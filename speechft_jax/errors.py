"""The errors a user's mistake raises: one base, `SpeechFTError`, whose `str` is a one-line message.

Every command turns a `SpeechFTError` into `error: MESSAGE` on stderr and exit code 2
(`speechft_jax.cli.run_command`); any other exception is a bug and keeps its traceback. The
concrete errors also subclass the built-in exception callers caught before this base existed
(`ValueError`, `RuntimeError`), so `except ValueError` keeps working.
"""

from __future__ import annotations


def short_repr(value, limit: int = 80) -> str:
    """`repr(value)` cut to `limit` characters, for an error message (a bad value may be huge)."""
    if isinstance(value, int) and value.bit_length() > 200:  # repr fails past 4300 digits
        return f"<a {value.bit_length()}-bit integer>"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class SpeechFTError(Exception):
    """A user error (a bad config, input file, checkpoint, ...); `str(err)` is the one-line message."""


class ConfigError(SpeechFTError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class DataError(SpeechFTError, ValueError):
    """One bad piece of input data; `str(err)` is a single line `"<where>: <problem>"`."""

    def __init__(self, where: str, problem: str):
        self.where = str(where)
        self.problem = str(problem).replace("\n", " ")
        super().__init__(f"{self.where}: {self.problem}")


class CheckpointError(SpeechFTError, ValueError):
    """A checkpoint is missing, malformed, or does not fit the model (the message names what)."""


class MergeError(SpeechFTError, ValueError):
    """Two parameter trees that cannot be merged (the message names the path)."""


class TrainingDiverged(SpeechFTError, RuntimeError):
    """The loss or the gradient became NaN or Inf; the last good checkpoint is kept."""
