"""User-facing errors: one clear line naming the file and the line or field."""

from __future__ import annotations

import os


class AllianceError(Exception):
    """Base class for errors the CLI reports as one line (exit code 2), not a traceback."""


class InputError(AllianceError):
    def __init__(
        self, path: str | os.PathLike | None, message: str, *, line: int | None = None, field: str | None = None
    ):
        self.path, self.line, self.field, self.message = (str(path) if path else None), line, field, message
        where = self.path or "<input>"
        if line is not None:
            where += f":{line}"
        if field is not None:
            where += f" [{field}]"
        super().__init__(f"{where}: {message}")


class UnknownFormatError(InputError):
    """No reader recognises the file (or `--format` names none)."""


class LimitError(InputError):
    """The input exceeds a reader limit (file size, line length, JSON nesting, records, .docx size or spans).

    Limits keep hostile or corrupt files from hanging or exhausting memory; the message names the reader
    option (e.g. `max_bytes=`) that raises the limit, so a genuinely large transcript can still be read.
    """


class ModelError(AllianceError):
    """A model or resource file is missing, unreadable, or not what it claims to be."""


class IntegrityError(ModelError):
    """A weights file does not have the expected SHA-256."""


class PipelineError(AllianceError):
    """A pipeline cannot be built (unknown component, unmet requirement) or a component got a session
    that lacks what it requires."""


class UsageError(AllianceError):
    """A command-line option or argument is invalid."""
