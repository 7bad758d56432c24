"""Exceptions that m3cvc raises for problems a user can fix.

Every error a user can cause (bad input, bad config, a damaged bitstream, a missing model) is an
:class:`M3cvcError`; the CLI prints its message on one line and exits non-zero.
"""

from __future__ import annotations

from typing import Optional


class M3cvcError(Exception):
    """Base class of every user-facing m3cvc error."""


class InputError(M3cvcError):
    """An input file is missing, empty, unreadable or not a video."""


class ConfigError(M3cvcError):
    """A configuration file or option is invalid."""


class BackendError(M3cvcError):
    """A backend is unknown, or its optional dependencies / model weights are missing."""


class BitstreamError(M3cvcError):
    """A bitstream is truncated, corrupted, or written by an unknown format version."""


def first_line(exc: BaseException, limit: Optional[int] = None) -> str:
    """The first line of ``exc``'s message (at most ``limit`` characters), or its class name when it
    has none: how a library's error is quoted inside one of ours."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def count(n: int, noun: str) -> str:
    """``"1 frame"``, ``"2 frames"``: a count for messages (``noun`` singular, plural by an ``s``)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
