"""Dispatch for commands with sub-commands (``m3cvc train keyframe-encoder``, ``m3cvc dataset build``)."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from ..errors import InputError


def dispatch(group: str, usage: str, subcommands: Mapping[str, Callable[[Sequence[str]], int]], argv: Sequence[str]) -> int:
    """Run ``subcommands[argv[0]](argv[1:])``; ``-h`` or nothing prints the usage."""
    if not argv or argv[0] in ("-h", "--help"):
        print(f"{usage}\n\nsub-commands: {', '.join(subcommands)}")
        return 0 if argv else 2
    if argv[0] not in subcommands:
        raise InputError(f"unknown {group} sub-command {argv[0]!r}; choose one of: {', '.join(subcommands)}")
    return subcommands[argv[0]](argv[1:])
