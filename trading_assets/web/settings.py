"""The browser's own settings: where it listens, its access token, and the UIs it links to."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from sql.engine import mask_url
from trading_assets.errors import SettingError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_DAGSTER_UI_URL = "http://127.0.0.1:3000"
DEFAULT_MLFLOW_UI_URL = "http://127.0.0.1:5000"
TOKEN_VARIABLE = "ARTIFACT_BROWSER_TOKEN"
MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


@dataclass(frozen=True)
class BrowserSettings:
    """``token`` None: no authentication (allowed on a loopback address only)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = field(default=None, repr=False)
    dagster_ui_url: str = DEFAULT_DAGSTER_UI_URL
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
    ) -> BrowserSettings:
        """The settings ``env`` (default: the process env) gives; SettingError, one line each."""
        env = os.environ if env is None else env
        problems: list[str] = []
        token = env.get(TOKEN_VARIABLE, "").strip() or None
        if token is None and not is_loopback(host):
            problems.append(
                f"serving on {host} (not a loopback address) needs a token: set "
                f"{TOKEN_VARIABLE} to a long random value (e.g. {TOKEN_VARIABLE}=$(openssl rand "
                "-hex 32)), or serve on --host 127.0.0.1"
            )
        elif token is not None and len(token) < MIN_TOKEN_LENGTH:
            problems.append(
                f"{TOKEN_VARIABLE} is {len(token)} characters long: use at least "
                f"{MIN_TOKEN_LENGTH} random characters, e.g. {TOKEN_VARIABLE}=$(openssl rand "
                "-hex 32)"
            )
        if not 0 < port < 65536:
            problems.append(f"--port {port} is not a TCP port: use e.g. --port {DEFAULT_PORT}")
        urls = {}
        for name, default in (
            ("DAGSTER_UI_URL", DEFAULT_DAGSTER_UI_URL),
            ("MLFLOW_UI_URL", DEFAULT_MLFLOW_UI_URL),
        ):
            raw = env.get(name, "").strip() or default
            if not raw.startswith(("http://", "https://")) or raw.partition("://")[2] in ("", "/"):
                problems.append(f"{name}={mask_url(raw)!r} is not an http(s) URL: use e.g. "
                                f"{name}={default}")
            urls[name] = raw.rstrip("/")
        if problems:
            raise SettingError(problems)
        return cls(
            host=host,
            port=port,
            token=token,
            dagster_ui_url=urls["DAGSTER_UI_URL"],
            mlflow_ui_url=urls["MLFLOW_UI_URL"],
        )

    def dagster_run_url(self, run_id: str) -> str:
        return f"{self.dagster_ui_url}/runs/{run_id}"

    def mlflow_run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.mlflow_ui_url}/#/experiments/{experiment_id}/runs/{run_id}"
