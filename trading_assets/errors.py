"""The project's own error types and how a failed step's error is read for people."""

from collections.abc import Sequence
from typing import Any


class SettingError(ValueError):
    """Settings that cannot work: one line per problem, naming the variable and what to set."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def root_cause_message(error: Any) -> str:
    """The innermost cause of a ``SerializableErrorInfo`` chain (``None``: unknown)."""
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message.strip() if error is not None else "unknown error"
