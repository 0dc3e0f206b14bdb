"""What every command line has in common: user errors are one line on stderr and exit code 2.

`ArgumentParser` is argparse's, except that a usage error (a missing or malformed option) prints
`error: PROG: MESSAGE (PROG --help lists the options)` on one line instead of the usage block,
and exits 2 as argparse does. `--help` is unchanged.
"""

from __future__ import annotations

import argparse
import sys


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):
        message = " ".join(str(message).split())  # argparse wraps some of its messages
        print(f"error: {self.prog}: {message} ({self.prog} --help lists the options)", file=sys.stderr)
        sys.exit(2)
