"""User-facing errors: one clear line naming the file and the line or field."""
from __future__ import annotations

import os


class AllianceError(Exception):
    """Base class for errors the CLI reports as one line (exit code 2), not a traceback."""


class InputError(AllianceError):
    def __init__(self, path: str | os.PathLike | None, message: str, *, line: int | None = None,
                 field: str | None = None):
        self.path, self.line, self.field, self.message = (str(path) if path else None), line, field, message
        where = self.path or "<input>"
        if line is not None:
            where += f":{line}"
        if field is not None:
            where += f" [{field}]"
        super().__init__(f"{where}: {message}")


class UnknownFormatError(InputError):
    pass
