"""Errors for bad input data, and the tally of skipped examples.

Every problem with a user's data (a missing file, corrupt audio, a label the vocabulary does not
know, a manifest line that does not parse) is reported as one `DataError` whose message names the
file (and line or key) and says what was expected. Where the user asked for `skip_bad`, the same
error is recorded in a `SkipLog` instead, and the loader warns once with the count.
"""

from __future__ import annotations

import warnings

from speechft_jax.errors import DataError


class SkipLog:
    """Counts the examples skipped because of a `DataError` (`skip_bad: true`).

    Keeps the first few messages so the warning shows what kind of problem it was.
    """

    def __init__(self, what: str, keep: int = 3):
        self.what = what
        self.keep = keep
        self.count = 0
        self.examples: list[str] = []
        self._warned_at = 0

    def add(self, err: DataError) -> None:
        self.count += 1
        if len(self.examples) < self.keep:
            self.examples.append(str(err))

    def warn(self) -> None:
        """Emit one warning for the skips not yet reported (no-op when there are none)."""
        if self.count > self._warned_at:
            new = self.count - self._warned_at
            self._warned_at = self.count
            shown = "; ".join(self.examples)
            warnings.warn(
                f"{self.what}: skipped {new} bad example(s) ({self.count} in total), e.g. {shown}",
                stacklevel=2,
            )


def handle_bad(err: DataError, skip_log: SkipLog | None) -> None:
    """Raise `err`, or record it when the caller skips bad examples (`skip_log` given)."""
    if skip_log is None:
        raise err
    skip_log.add(err)
