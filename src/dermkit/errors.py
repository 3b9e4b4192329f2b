"""Exceptions that carry what went wrong, where, and what to do about it.

Every error a user can cause (a bad path, a malformed CSV, an unknown plugin name)
is a :class:`DermkitError`. The command line turns these into a one-line message and
exit code 2 instead of a traceback, so the message itself must be enough to act on.
"""

from __future__ import annotations


class DermkitError(Exception):
    """Base class for errors caused by input or configuration, not by a dermkit bug.

    ``where`` names the file, CSV row or option at fault; ``hint`` says what to do.
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        """One line: ``where: message (hint)``."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text = f"{text}. {self.hint}"
        return text


class DataError(DermkitError):
    """An image, CSV or folder that cannot be used as given."""


class ConfigError(DermkitError):
    """An option, configuration file or argument that is invalid."""


class PluginError(DermkitError):
    """A plugin name that is unknown, claimed twice, or a plugin that is broken."""


class OutputError(DermkitError):
    """A file that could not be written: a full disk, a read-only or unwritable folder.

    Raised by :mod:`dermkit.atomic`, whose writes never leave a half-written file, so
    everything written before the failure is complete and readable.
    """
