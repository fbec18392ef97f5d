"""The artifact browser as one FastAPI application: the API, the pages, the errors, the token."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import dagster as dg
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from trading_assets.web import api, handlers, pages
from trading_assets.web.auth import TokenAuth
from trading_assets.web.context import Browser
from trading_assets.web.formatting import FILTERS
from trading_assets.web.runs import DagsterRuns, InstanceFactory
from trading_assets.web.settings import BrowserSettings
from trading_assets.web.stores import open_stores

HERE = Path(__file__).resolve().parent
DESCRIPTION = """Read-only access to every stored artifact of the trading-signals pipeline: the
rows of the `artifacts` table and their payloads (PNG, Parquet, JSON), over the same database and
object store the pipeline uses. Lists are newest first with keyset pagination (`cursor` /
`next_cursor`). Errors are `{"error": "..."}`."""


def instance_factory_for(env: Mapping[str, str]) -> InstanceFactory | None:
    """The Dagster instance of DAGSTER_HOME (as the CLI sets it), or None when it is not set."""
    home = env.get("DAGSTER_HOME", "").strip()
    if not home:
        return None
    return partial(dg.DagsterInstance.from_config, home)


def create_app(
    env: Mapping[str, str] | None = None,
    *,
    settings: BrowserSettings | None = None,
    instance_factory: InstanceFactory | None = None,
) -> FastAPI:
    """The application over the stores ``env`` configures (default: the process environment).

    SettingError when the configuration cannot work. ``instance_factory`` opens the Dagster
    instance run statuses come from (default: DAGSTER_HOME's, if set).
    """
    env = os.environ if env is None else env
    settings = settings or BrowserSettings.from_env(env)
    stores = open_stores(env)
    runs = DagsterRuns(instance_factory or instance_factory_for(env))
    state = Browser(
        settings=settings,
        stores=stores,
        runs=runs,
        secrets=frozenset(stores.secrets() | ({settings.token} if settings.token else set())),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(
        title="trading-signals artifact browser",
        description=DESCRIPTION,
        version="1",
        lifespan=lifespan,
    )
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(FILTERS)
    templates.env.globals.update(settings=settings, stores_description=stores.describe())
    app.state.browser = state
    app.state.templates = templates
    handlers.install(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    if settings.token:
        app.add_middleware(TokenAuth, token=settings.token)
    return app
