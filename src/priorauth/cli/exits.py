"""Numbered exit codes and the one way the CLI stops on an error."""

from __future__ import annotations

import sys
from enum import IntEnum
from typing import NoReturn


class Exit(IntEnum):
    OK = 0  # a determination was made (approve, approve-modified, deny or pend alike)
    BAD_INPUT = 2  # the request, claims file or an option cannot be used
    NO_POLICY = 3  # no loaded policy covers the request on its review date
    POLICY_INVALID = 4  # a policy file breaks the schema


def fatal(message: str, code: Exit = Exit.BAD_INPUT) -> NoReturn:
    """Print one line on stderr and exit: never a traceback for a user's mistake."""
    line = " ".join(message.split())
    sys.stderr.write(f"priorauth: error: {line}\n")
    raise SystemExit(int(code))
