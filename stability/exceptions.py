"""Errors raised by the toolkit.

Every error the toolkit raises on purpose derives from :class:`StabilityError`.
Errors about a user's input carry where the problem is (file, column, row) and
render as one readable line, which the command line prints before exiting
with status 2.
"""

from __future__ import annotations


class StabilityError(Exception):
    """Base class of all errors raised by the toolkit."""

    exit_code = 1


class InputError(StabilityError):
    """Bad input: a data file, a spec or a parameter that cannot be used.

    Parameters
    ----------
    message : str
        What is wrong, in one sentence.
    file : str, optional
        The file the problem is in.
    column : str, optional
        The column concerned (for a :class:`SpecError`, the spec field, e.g. ``levels.2.method``).
    row : int, optional
        1-based line number in the file (the header is line 1), or row number.
    sheet : str, optional
        The sheet of a workbook (e.g. an XLSForm's ``survey``) the row is in.
    """

    exit_code = 2
    #: What :attr:`column` is called in the message: a data file has columns, a spec has fields.
    column_word = "column"

    def __init__(self, message, *, file=None, column=None, row=None, sheet=None):
        self.message = message
        self.file = None if file is None else str(file)
        self.column = column
        self.row = row
        self.sheet = sheet
        super().__init__(self.__str__())

    def __str__(self):
        where = []
        if self.file:
            where.append(self.file)
        if self.sheet is not None:
            where.append(f"sheet '{self.sheet}'")
        if isinstance(self.column, tuple):  # several columns at fault (e.g. both coordinates)
            where.append(f"{self.column_word}s " + ", ".join(f"'{c}'" for c in self.column))
        elif self.column is not None:
            where.append(f"{self.column_word} '{self.column}'")
        if self.row is not None:
            where.append(f"row {self.row}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


    def in_file(self, file) -> "InputError":
        """The same error, said of ``file`` when it names no file yet (e.g. a spec option checked at run time)."""
        import copy

        if self.file or file is None:
            return self
        located = copy.copy(self)
        located.file = str(file)
        located.args = (str(located),)
        return located


class SpecError(InputError):
    """The index specification (or a form mapping) is malformed or inconsistent.

    ``column`` is the field concerned, as a dotted path (``indicators.robbery.direction``); the message
    reads ``<file>, field 'indicators.robbery.direction': ...``.
    """

    column_word = "field"


class DataError(InputError):
    """A data file is unreadable, empty, or its values break the spec's rules."""


class ValidationFailed(DataError):
    """Validation found one or more errors; ``problems`` lists all of them."""

    def __init__(self, problems):
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        first = errors[0]
        more = sum(1 + getattr(p, "more", 0) for p in errors) - 1
        message = first.message + (f" (and {more} more problem{'s' * (more > 1)}: "
                                   "run 'stability validate' to list them)" if more else "")
        super().__init__(message, file=first.file, column=first.column, row=first.row)


class MethodError(StabilityError):
    """A method cannot be applied to these values (e.g. zero range, log of a negative)."""

    exit_code = 2


class ParameterError(InputError):
    """A command or report parameter is invalid (unknown region, bad round, unsafe path).

    Parameters
    ----------
    message : str
        What is wrong, in one sentence.
    option : str, optional
        The command-line option concerned (e.g. ``--region``); the error then
        reads ``option --region: <message>``.
    file, column, row
        As for :class:`InputError`.
    """

    def __init__(self, message, *, option=None, file=None, column=None, row=None):
        self.option = option
        super().__init__(message, file=file, column=column, row=row)

    def __str__(self):
        text = super().__str__()
        return f"option {self.option}: {text}" if self.option else text


class ReportError(StabilityError):
    """Building one or more reports failed."""
