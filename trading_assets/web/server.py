"""``trading-signals serve``: the application under uvicorn, one worker, bound to 127.0.0.1 unless
told otherwise (then only with ARTIFACT_BROWSER_TOKEN)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

import uvicorn

from trading_assets.web.app import create_app
from trading_assets.web.settings import BrowserSettings

_TOKEN_IN_QUERY = re.compile(r"(?i)(token=)[^&\s]*")
# Bounded waits: an idle keep-alive connection, and the shutdown of requests in flight.
KEEP_ALIVE_SECONDS = 5
GRACEFUL_SHUTDOWN_SECONDS = 10


class RedactTokens(logging.Filter):
    """Access-log lines show ``?token=***``: a page opened with its token never logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(r"\1***", a) if isinstance(a, str) else a
                for a in record.args
            )
        return True


def serve(settings: BrowserSettings, env: Mapping[str, str] | None = None) -> None:
    """Serve ``settings.host``:``settings.port`` until interrupted (SettingError: one line each,
    before anything listens, when the stores' configuration cannot work)."""
    host, port = settings.host, settings.port
    app = create_app(env, settings=settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        workers=1,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        server_header=False,
    )
    # uvicorn.Config configured its loggers just now; the filter goes on after.
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    browser = app.state.browser
    where = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    print(f"artifact browser on {where} (API docs {where}/docs); reading the "
          f"{browser.stores.describe()}; token {'required' if settings.token else 'not used'}",
          flush=True)
    uvicorn.Server(config).run()
