"""What every command line has in common: user errors are one line on stderr and exit code 2.

`ArgumentParser` is argparse's, except that a usage error (a missing or malformed option) prints
`error: PROG: MESSAGE (PROG --help lists the options)` on one line instead of the usage block,
and exits 2 as argparse does. `--help` is unchanged.

`run_command(body, quiet=...)` runs a command's work (every `main` calls it once its arguments are
parsed). A `SpeechFTError`, or an `OSError` from a path the user gave, becomes `error: MESSAGE` on
one line of stderr and exit code 2; any other exception is a bug and keeps its traceback. While
it runs, the package's log records (`logging.getLogger(__name__)` in every module) go to the
console as plain messages, INFO to stdout (where the commands printed their notes before they
logged them) and WARNING and above to stderr; `log_to_file(path)` also keeps them, time-stamped, in
a run folder; `quiet=True` (a command's `--quiet`) turns off every progress bar: each bar is
created with `disable=not progress_bars_shown()`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from speechft_jax.errors import SpeechFTError

PACKAGE_LOGGER = "speechft_jax"
LOG_FILE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
QUIET_HELP = "no progress bars (notes, warnings and the results are still printed)"


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):
        message = " ".join(str(message).split())  # argparse wraps some of its messages
        print(f"error: {self.prog}: {message} ({self.prog} --help lists the options)", file=sys.stderr)
        sys.exit(2)


@dataclasses.dataclass
class _Command:
    """What the running command set up: its `--quiet` and the log files it writes."""

    quiet: bool = False
    log_files: list[logging.FileHandler] = dataclasses.field(default_factory=list)


_running: _Command | None = None


def progress_bars_shown() -> bool:
    """False while a command runs with `--quiet`; every progress bar is created with
    `disable=not progress_bars_shown()`."""
    return _running is None or not _running.quiet


class _ConsoleHandler(logging.Handler):
    """Plain messages to whatever `sys.<stream>` is when a record comes (a test's capture, a
    redirect), written through tqdm so that a line never lands inside a progress bar."""

    def __init__(self, stream: str, level: int, below: int | None = None):
        super().__init__(level)
        self.stream_name = stream
        if below is not None:
            self.addFilter(lambda record: record.levelno < below)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=getattr(sys, self.stream_name))
        except Exception:
            self.handleError(record)


class _RunLogFile(logging.FileHandler):
    """A run folder's log, appended to. Records wait in memory until the folder exists: the log
    never makes a folder (the command does, after its own checks), so a command that stops before
    making it leaves no log behind."""

    def __init__(self, path: Path):
        super().__init__(path, mode="a", encoding="utf-8", delay=True)
        self.setFormatter(logging.Formatter(LOG_FILE_FORMAT))
        self.waiting: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.waiting.append(record)
        self.write_waiting()

    def write_waiting(self) -> None:
        """Write the waiting records, if the folder exists now."""
        if self.stream is None:
            if not Path(self.baseFilename).parent.is_dir():
                return
            try:
                self.stream = self._open()
            except OSError:  # a folder the command cannot write in either: its error says so
                return
        records, self.waiting = self.waiting, []
        for record in records:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        # a log that cannot be written (a full disk) is no reason to stop the run, and logging's
        # own report of it, a traceback on stderr, would break a command's one-line errors
        pass


def log_to_file(path) -> None:
    """Within `run_command`, also append the package's log records (time-stamped, with the process
    id), and how the command ended, to `path` once its folder exists; outside a command, do nothing."""
    if _running is None:
        return
    handler = _RunLogFile(Path(path))
    handler.setLevel(logging.INFO)
    logging.getLogger(PACKAGE_LOGGER).addHandler(handler)
    _running.log_files.append(handler)
    _record_in_log_files(_running, logging.INFO, "started")


def _record_in_log_files(command: _Command, level: int, message: str, exc_info=None) -> None:
    """`message` in the command's log files only (the console shows what it has to say itself)."""
    record = logging.makeLogRecord({"name": __name__, "levelno": level, "levelname": logging.getLevelName(level),
                                    "msg": message, "exc_info": exc_info})
    for handler in command.log_files:
        handler.handle(record)


def run_command(body: Callable[[], int | None], *, quiet: bool = False) -> int:
    """Run `body` (a command's work; returns its exit code, None for 0) with the console log, and
    return its exit code: 2 after a `SpeechFTError` or an `OSError`, printed as one line
    `error: MESSAGE` on stderr. Any other exception propagates with its traceback (which the
    command's log files record too)."""
    global _running
    logger = logging.getLogger(PACKAGE_LOGGER)
    saved = _running, logger.level, logger.propagate
    console = [_ConsoleHandler("stdout", logging.INFO, below=logging.WARNING),
               _ConsoleHandler("stderr", logging.WARNING)]
    command = _running = _Command(quiet=quiet)
    logger.setLevel(logging.INFO)
    # the console is ours: a root handler (orbax's import installs one) would print each record again
    logger.propagate = False
    for handler in console:
        logger.addHandler(handler)
    try:
        code = body()
        code = 0 if code is None else code
        _record_in_log_files(command, logging.INFO, f"finished (exit code {code})")
        return code
    except (SpeechFTError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        _record_in_log_files(command, logging.ERROR, f"error: {err}")
        return 2
    except Exception:
        _record_in_log_files(command, logging.ERROR, "stopped by a bug:", exc_info=sys.exc_info())
        raise
    finally:
        for handler in console + command.log_files:
            logger.removeHandler(handler)
            handler.close()
        _running, level, logger.propagate = saved
        logger.setLevel(level)
