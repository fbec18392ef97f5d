"""Reading a failed step's error the way a user wrote it, not Dagster's wrapper around it."""

from typing import Any


def root_cause_message(error: Any) -> str:
    """The innermost cause of a ``SerializableErrorInfo`` chain (``None``: unknown)."""
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message.strip() if error is not None else "unknown error"
