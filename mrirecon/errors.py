"""The project's error types: what a user can fix, as opposed to a bug.

Every error a user can fix (a bad file, option, config or checkpoint) is a
:class:`MrireconError`; its message is one line that names the file, key or option
and the reason. The CLI prints such an error as that one line and exits non-zero. Any
other exception is a bug: the CLI lets it surface with its traceback and a one-line hint
to report it. A batch job (``reconstruct``) skips a file on :class:`DataError` or
``OSError`` and goes on; it never turns another exception into a per-file failure.

The classes also derive from ``ValueError`` so that callers written against plain
``ValueError`` keep working.
"""

from __future__ import annotations

__all__ = ["MrireconError", "DataError", "ConfigError", "CheckpointError"]


class MrireconError(ValueError):
    """An error the user can fix; the message is one line naming what and why."""


class DataError(MrireconError):
    """A data file (input k-space, target or reconstruction) that cannot be used."""


class ConfigError(MrireconError):
    """A config file, ``--set`` override or command-line option that is invalid."""


class CheckpointError(MrireconError):
    """A checkpoint that is missing, unreadable or does not fit its config."""
