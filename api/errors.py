"""Domain errors: what went wrong in the lists, decisions and jobs, without a word of HTTP.

The web layer maps each kind to its status code in one place (api/main.py); a domain module
only says what happened, so the same functions serve the CLI, the batch and the routes alike.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refused operation, with a message that names the record and what was expected."""

    def __init__(self, message: str, *, zh: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.zh = zh  # what people read (pages, the API's `message`), when it differs from the API's words
        self.field = field  # the field at fault, when one is


class NotFoundError(DomainError):
    """The named record does not exist."""


class ConflictError(DomainError):
    """The operation conflicts with stored state (already decided, full, a batch already running)."""


class ForbiddenError(DomainError):
    """The caller's key may not act on this record (another grid, another role)."""


class InvalidError(DomainError):
    """The input breaks a rule of the lists (unknown grid, a field that cannot be cleared)."""
