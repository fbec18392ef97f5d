"""How a setting that cannot work becomes one line naming the variable, its value and an example.

``SettingsReader`` builds each resource from plain values so pydantic and the resource's own
validators judge them at once, and collects every complaint (``trading_assets/environment.py`` wires
it); the checks below need no resource: folders, the database URL, the cron, the webhook.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pydantic
from dagster._utils.schedules import is_valid_cron_string

from sql.engine import DatabaseUrlError, mask_url, parse_database_url, sqlite_path

# Below this a run can fail half-way through writing charts, the spool or SQLite's journal.
MIN_FREE_BYTES = 100 * 1024**2
DEFAULT_CRON = "0 9 * * 1-5"
EXAMPLE_DATABASE_URLS = (
    "sqlite:///data/artifacts.db or postgresql+psycopg2://user:password@host:5432/db"
)

T = TypeVar("T")
_SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|TOKEN")


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def shown(value: object) -> str:
    """A default as a user would type it after ``NAME=``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Setting:
    """One variable as read: the value validation sees and what the resource is given."""

    variable: str
    raw: str  # as set, stripped; '' when unset. Never shown for a secret.
    value: Any  # parsed, or the default when unset or unusable
    bound: Any  # the value, or dg.EnvVar(variable) so the UI shows where it came from
    example: Any = None  # None: the field's own default
    ok: bool = True

    def or_none(self) -> Setting:
        """Unset (or empty) means None rather than ''."""
        if self.value == "":
            return dataclasses.replace(self, value=None, bound=None)
        return self

    def plain(self, transform: Callable[[Any], Any] = lambda v: v) -> Setting:
        """Given as a value even from the process environment (e.g. to a Literal field)."""
        value = transform(self.value)
        return dataclasses.replace(self, value=value, bound=value)


class SettingsReader:
    """Reads ``env`` and collects every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        # The process environment is bound lazily; an explicit mapping (tests, tools) as is.
        self.bind = env is os.environ
        self.problems: list[str] = []
        self._failed: set[str] = set()  # variables already reported

    def get(self, name: str) -> str:
        """The variable's value, stripped; '' when unset."""
        return self.env.get(name, "").strip()

    def problem(self, line: str | None) -> None:
        if line and one_line(line) not in self.problems:
            self.problems.append(one_line(line))

    def attempt(self, check: Callable[[], T]) -> T | None:
        """``check()``, or None with its one-line message kept when it raises ValueError."""
        try:
            return check()
        except ValueError as exc:
            for line in getattr(exc, "problems", [str(exc)]):
                self.problem(line)
            return None

    def build(
        self, factory: Callable[..., T], check: Callable[[T], object] | None = None, **fields: Any
    ) -> T:
        """``factory(**fields)`` validated on plain values; each complaint names its variable.

        ``Setting`` fields are unwrapped; on a pydantic error the fields it names fall back to
        their defaults so the rest (and every later resource) is still checked. ``check`` is the
        resource's own validator (e.g. ``BrokerResource.trading_mode``); what it says about a
        variable already reported (judged on its default) is left out.
        """
        settings = {k: v for k, v in fields.items() if isinstance(v, Setting)}
        plain = {k: v.value if isinstance(v, Setting) else v for k, v in fields.items()}
        self._failed.update(s.variable for s in settings.values() if not s.ok)
        try:
            resource = factory(**plain)
        except pydantic.ValidationError as exc:
            bad = set()
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else ""
                bad.add(field)
                self.problem(_field_problem(factory, field, settings.get(field), error))
                if field in settings:
                    self._failed.add(settings[field].variable)
            resource = factory(**{k: v for k, v in plain.items() if k not in bad})
        if check is not None:
            try:
                check(resource)
            except ValueError as exc:
                if not any(f"{name}=" in str(exc) for name in self._failed):
                    self.problem(str(exc))
        if self.bind and not self.problems and any(
            s.bound is not s.value for s in settings.values()
        ):
            bound = {k: v.bound if isinstance(v, Setting) else v for k, v in fields.items()}
            return factory(**bound)
        return resource


def _field_problem(
    factory: Callable[..., Any], field: str, setting: Setting | None, error: Any
) -> str:
    message = str(error["msg"])
    if error["type"] == "value_error":
        reason = f"is invalid ({message.removeprefix('Value error, ')})"
    elif message.startswith("Input should be "):
        reason = "must be " + message.removeprefix("Input should be ")
    else:
        reason = f"is invalid ({message})"
    if setting is None:  # not fed by a variable: a wiring bug, still said in one line
        return f"{getattr(factory, '__name__', factory)}.{field} {reason}"
    example = setting.example
    if example is None:
        model_fields = getattr(factory, "model_fields", {})
        example = model_fields[field].default if field in model_fields else None
    fix = f": use e.g. {setting.variable}={shown(example)}" if example is not None else ""
    value = "(hidden)" if _SECRET_NAME.search(setting.variable) else repr(setting.raw)
    return f"{setting.variable}={value} {reason}{fix}"


# -- checks that need no resource -------------------------------------------------------------


def nearest_existing(path: Path) -> Path:
    """``path``, or the nearest of its parents that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _megabytes(size: int) -> str:
    return f"{size / 1024**2:,.0f} MB"


def folder_problem(variable: str, raw: str, folder: Path, example: str) -> str | None:
    """Why ``folder`` (created on first use if missing) cannot hold the data, or None."""
    setting = f"{variable}={raw!r}" if raw else f"{variable} (unset: {folder})"
    if folder.exists() and not folder.is_dir():
        return f"{setting} is a file, not a folder: use e.g. {variable}={example}"
    existing = nearest_existing(folder)
    if not os.access(existing, os.W_OK | os.X_OK):
        return (
            f"{setting} cannot be written: {existing} is read-only; make it writable or use "
            f"e.g. {variable}={example}"
        )
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        return (
            f"{setting} is on a full disk: {_megabytes(free)} free at {existing}, at least "
            f"{_megabytes(MIN_FREE_BYTES)} needed; free some space or use e.g. "
            f"{variable}={example} on another disk"
        )
    return None


def database_url_problem(raw: str) -> str | None:
    """Why DATABASE_URL cannot work, with any password masked, or None."""
    try:
        parse_database_url(raw)
        path = sqlite_path(raw)
    except DatabaseUrlError:
        scheme = raw.partition("://")[0].lower() if "://" in raw else ""
        what = (
            f"names a {scheme} database; only SQLite and PostgreSQL are supported"
            if scheme else "is not a database URL"
        )
        return (
            f"DATABASE_URL={mask_url(raw)!r} {what}: use e.g. DATABASE_URL="
            f"{EXAMPLE_DATABASE_URLS} (percent-encode special characters in the password, e.g. "
            "@ as %40)"
        )
    if path is None:
        return None
    return folder_problem(
        "DATABASE_URL", mask_url(raw), path.resolve().parent, "sqlite:///data/artifacts.db"
    )


def cron_problem(value: str) -> str | None:
    """Why WORKFLOW_SCHEDULE is not a cron Dagster can run (its own validation), or None."""
    cron = " ".join(value.split())
    if cron and len(cron.split(" ")) == 5 and is_valid_cron_string(cron):
        return None
    return (
        f"WORKFLOW_SCHEDULE={value!r} is not a valid 5-field cron expression (minute hour "
        f"day-of-month month day-of-week): use e.g. WORKFLOW_SCHEDULE='{DEFAULT_CRON}' for 09:00 "
        "New York time on weekdays"
    )


def webhook_problem(raw: str) -> str | None:
    """ALERT_WEBHOOK_URL must be http(s); its path carries the token and is never shown."""
    try:
        parts = urlsplit(raw)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is not None and parts.scheme in ("http", "https") and host:
        return None
    where = f"{parts.scheme}://{host}/..." if parts is not None and host else "(hidden)"
    return (
        f"ALERT_WEBHOOK_URL={where!r} is not an http(s) URL: use e.g. "
        "ALERT_WEBHOOK_URL=https://hooks.slack.com/services/... (the URL Slack gives you)"
    )
