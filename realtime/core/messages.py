"""The one way the command talks to its user outside the picture: a line on stderr,
prefixed with the program's name (the CLI's errors and notes, a lost camera from the
capture thread)."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    """One line for the user, on stderr, flushed at once (it may come from any thread)."""
    print(f"prnet-live: {message}", file=sys.stderr, flush=True)
