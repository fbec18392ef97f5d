"""The one place the environment becomes resources: embedded defaults unless a variable is set.

Called when the code location loads (``@dg.definitions``) and by every command, never at import.
Every setting is judged before anything runs: each resource is first built from the plain values,
so pydantic and the resource's own validators see them, and every problem comes back at once as
one line naming the variable (``check_settings``; ``SettingError`` from
``resources_from_environment``). String settings are then bound with ``dg.EnvVar`` so the Dagster
UI shows where a value comes from and secrets never land in run config.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dagster as dg

from io_managers.artifact_io_manager import ArtifactIOManager
from io_managers.artifacts import Artifacts
from io_managers.spool import ArtifactSpool
from resources.broker import BrokerResource
from resources.database import ArtifactDatabase
from resources.evaluation import EvaluationSettings
from resources.ibkr import IbkrResource
from resources.llm import LlmResource
from resources.market_data import MarketDataResource
from resources.mlflow_tracking import MlflowTracking, is_remote_uri
from resources.notifier import WebhookNotifier
from resources.object_store import LocalObjectStore, ObjectStore
from resources.settings_check import (
    DEFAULT_CRON,
    Setting,
    SettingsReader,
    cron_problem,
    database_url_problem,
    folder_problem,
    shown,
    webhook_problem,
)
from resources.trading_policy import TradingPolicy
from resources.watchlist import WatchlistResource
from sql.engine import mask_url
from trading_assets.errors import SettingError
from trading_assets.market_data.folder_source import MarketDataError
from trading_assets.partitions import DEFAULT_START_DATE, parse_start_date, start_date_error

__all__ = [
    "SettingError",
    "check_settings",
    "data_dir",
    "object_store_from_environment",
    "resources_from_environment",
    "workflow_schedule",
]

DEFAULT_DATA_DIR = "data"
_EXAMPLE_FOLDER = "/srv/trading-data"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _text(name: str, default: str, r: SettingsReader) -> Setting:
    raw = r.get(name)
    if not raw:
        return Setting(name, "", default, default)
    return Setting(name, raw, raw, dg.EnvVar(name) if r.bind else raw, example=default or None)


def _secret(name: str, r: SettingsReader) -> Setting:
    # Always bound by name, even from an explicit mapping: a key never becomes run config the UI
    # shows. It is read from the process environment when the resource starts; never shown here.
    bound = dg.EnvVar(name) if r.get(name) else None
    return Setting(name, "", bound, bound)


def _number(name: str, default: float | None, r: SettingsReader) -> Setting:
    """A number; whether it fits (positive, whole, in range) is the field's to say."""
    raw = r.get(name)
    if not raw:
        return Setting(name, "", default, default, example=default)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        example = f": use e.g. {name}={shown(default)}" if default is not None else ""
        r.problem(f"{name}={raw!r} is not a number{example}")
        return Setting(name, raw, default, default, example=default, ok=False)
    return Setting(name, raw, value, value, example=default)


def _flag(name: str, default: bool, r: SettingsReader) -> Setting:
    raw = r.get(name)
    if not raw:
        return Setting(name, "", default, default)
    if raw.lower() in _TRUE + _FALSE:
        value = raw.lower() in _TRUE
        return Setting(name, raw, value, value)
    r.problem(f"{name}={raw!r} is not true or false: use e.g. {name}={shown(default)}")
    return Setting(name, raw, default, default, ok=False)


def _default(resource: type, field: str) -> Any:
    """A resource field's own default: the one place a default is stated."""
    return resource.model_fields[field].default


def _set_numbers(r: SettingsReader, resource: type, **variables: str) -> dict[str, Setting]:
    """field -> setting for each variable that is set; unset ones keep the field's own default."""
    return {
        field: _number(name, _default(resource, field), r)
        for field, name in variables.items()
        if r.get(name)
    }


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("TRADING_DATA_DIR", "").strip() or DEFAULT_DATA_DIR).resolve()


def workflow_schedule(env: Mapping[str, str] | None = None) -> str:
    """WORKFLOW_SCHEDULE, or weekdays at 09:00 New York time; SettingError if not a cron."""
    env = os.environ if env is None else env
    cron = env.get("WORKFLOW_SCHEDULE", "").strip() or DEFAULT_CRON
    problem = cron_problem(cron)
    if problem:
        raise SettingError(problem)
    return cron


# S3 bucket naming rules (3-63 characters: lower case, digits, dots, hyphens).
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _minio_endpoint_url(r: SettingsReader) -> str | None:
    """MINIO_ENDPOINT as a URL: ``host:port`` (MinIO style) gets its scheme from MINIO_SECURE."""
    raw = r.get("MINIO_ENDPOINT").rstrip("/")
    secure = _flag("MINIO_SECURE", False, r)
    if "://" in raw:
        scheme, _, rest = raw.partition("://")
        if scheme not in ("http", "https") or not rest or "/" in rest:
            r.problem(
                f"MINIO_ENDPOINT={mask_url(raw)!r} is not an endpoint: use e.g. "
                "MINIO_ENDPOINT=minio:9000 (host:port) or a URL without a path such as "
                "http://minio:9000"
            )
            return None
        if secure.raw and secure.ok and secure.value != (scheme == "https"):
            r.problem(
                f"MINIO_ENDPOINT={mask_url(raw)!r} and MINIO_SECURE={secure.raw!r} disagree: drop "
                "MINIO_SECURE or make it match the URL's scheme"
            )
        return raw
    if "/" in raw or " " in raw:
        r.problem(
            f"MINIO_ENDPOINT={mask_url(raw)!r} is not host:port: use e.g. "
            "MINIO_ENDPOINT=minio:9000 or a URL such as https://s3.example.com"
        )
        return None
    # MinIO deployments are usually plain HTTP inside a private network: secure is opt-in.
    return f"{'https' if secure.value else 'http'}://{raw}"


def _minio_bucket(r: SettingsReader) -> str:
    from resources.s3_object_store import DEFAULT_BUCKET

    bucket = r.get("MINIO_BUCKET") or DEFAULT_BUCKET
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        r.problem(
            f"MINIO_BUCKET={bucket!r} is not a valid bucket name (3-63 lower-case letters, "
            f"digits, dots or hyphens, starting and ending with a letter or digit): use e.g. "
            f"MINIO_BUCKET={DEFAULT_BUCKET}"
        )
    return bucket


def _object_store(r: SettingsReader, data: Path) -> ObjectStore:
    """The local object folder, or MinIO/S3 as soon as MINIO_ENDPOINT is set."""
    if not r.get("MINIO_ENDPOINT"):
        return LocalObjectStore(root=str(data / "objects"))
    endpoint, bucket = _minio_endpoint_url(r), _minio_bucket(r)
    access_key = _text("MINIO_ACCESS_KEY", "", r).or_none()
    secret_key = _text("MINIO_SECRET_KEY", "", r).or_none()
    if (access_key.value is None) != (secret_key.value is None):
        missing = "MINIO_SECRET_KEY" if secret_key.value is None else "MINIO_ACCESS_KEY"
        r.problem(
            f"MINIO_ENDPOINT is set with only one of MINIO_ACCESS_KEY / MINIO_SECRET_KEY: set "
            f"{missing} too (or neither, to use the AWS credential chain)"
        )
    if endpoint is None:
        return LocalObjectStore()  # a stand-in, never used: the problem above fails the load
    # boto3 and dagster-aws cost ~0.45 s to import: only when S3 is configured.
    from resources.s3_object_store import DEFAULT_REGION, s3_object_store

    return r.build(
        s3_object_store,
        endpoint_url=endpoint,
        bucket=bucket,
        access_key=access_key,
        secret_key=secret_key,
        region=_text("MINIO_REGION", DEFAULT_REGION, r),
        max_attempts=_number("MINIO_MAX_ATTEMPTS", 3, r),
    )


def object_store_from_environment(env: Mapping[str, str], data: Path) -> ObjectStore:
    """The object store ``env`` configures; SettingError naming every MINIO_* that cannot work."""
    r = SettingsReader(env)
    store = _object_store(r, data)
    if r.problems:
        raise SettingError(r.problems)
    return store


def _ibkr(r: SettingsReader) -> IbkrResource:
    """The IBKR connection settings; only used when MARKET_DATA_SOURCE or TRADING_MODE is ibkr."""
    return r.build(
        IbkrResource,
        host=_text("IBKR_HOST", _default(IbkrResource, "host"), r),
        account=_text("IBKR_ACCOUNT", _default(IbkrResource, "account"), r),
        **_set_numbers(
            r,
            IbkrResource,
            port="IBKR_PORT",
            client_id="IBKR_CLIENT_ID",
            connect_timeout_seconds="IBKR_CONNECT_TIMEOUT",
            request_timeout_seconds="IBKR_REQUEST_TIMEOUT",
        ),
    )


def _mlflow(r: SettingsReader, data: Path) -> MlflowTracking:
    """MLFLOW_TRACKING_URI, or a local SQLite store (artifacts beside it) in the data folder."""
    uri = r.get("MLFLOW_TRACKING_URI")
    return r.build(
        MlflowTracking,
        tracking_uri=_text("MLFLOW_TRACKING_URI", f"sqlite:///{data / 'mlflow.db'}", r),
        # A server keeps artifacts where it is configured to; a local store keeps them in data/.
        artifact_root=None if uri and is_remote_uri(uri) else str(data / "mlartifacts"),
        timeout_seconds=_number("MLFLOW_TIMEOUT_SECONDS", 30.0, r),
        max_retries=_number("MLFLOW_MAX_RETRIES", 2, r),
    )


def _check_llm(llm: LlmResource) -> None:
    provider = llm.provider_name()
    if provider != "offline":
        llm.base_url(provider)


def _check_market_source(source: MarketDataResource) -> None:
    if source.kind() == "csv" and not Path(source.data_dir).is_dir():
        raise MarketDataError(
            f"MARKET_DATA_DIR={source.data_dir!r} is not a folder: create it with one "
            "<SYMBOL>.csv or .parquet file per symbol, or use e.g. MARKET_DATA_SOURCE=synthetic"
        )


def _resources(r: SettingsReader) -> dict[str, Any]:
    data = data_dir(r.env)
    default_db = f"sqlite:///{data / 'artifacts.db'}"
    database = r.build(ArtifactDatabase, url=_text("DATABASE_URL", default_db, r))
    object_store = _object_store(r, data)
    spool = r.build(ArtifactSpool, directory=_text("SPOOL_DIR", str(data / "spool"), r))
    # The one place the artifact store is configured: every user gets its store from it.
    artifacts = r.build(
        Artifacts,
        Artifacts.write_policy,
        database=database,
        object_store=object_store,
        spool=spool,
        **_set_numbers(
            r,
            Artifacts,
            write_attempts="STORAGE_WRITE_ATTEMPTS",
            retry_base_seconds="STORAGE_RETRY_BASE_SECONDS",
            retry_max_seconds="STORAGE_RETRY_MAX_SECONDS",
            write_timeout_seconds="STORAGE_WRITE_TIMEOUT_SECONDS",
        ),
    )
    ibkr = _ibkr(r)
    resources = {
        "io_manager": r.build(
            ArtifactIOManager,
            artifacts=artifacts,
            artifact_browser_url=_text(
                "ARTIFACT_BROWSER_URL", _default(ArtifactIOManager, "artifact_browser_url"), r
            ),
        ),
        "watchlist": r.build(
            WatchlistResource,
            WatchlistResource.current,
            symbols=_text("STOCK_SYMBOLS", "TSLA,NVDA", r),
            file=_text("WATCHLIST_FILE", "", r).or_none(),
        ),
        "notifier": r.build(
            WebhookNotifier, webhook_url=_text("ALERT_WEBHOOK_URL", "", r).or_none()
        ),
        "artifacts": artifacts,
        # Its parts, for what needs only one of them (a sensor reading rows, the doctor).
        "artifact_db": database,
        "object_store": object_store,
        "spool": spool,
        "mlflow": _mlflow(r, data),
        "market_source": r.build(
            MarketDataResource,
            _check_market_source,
            source=_text("MARKET_DATA_SOURCE", "synthetic", r),
            data_dir=_text("MARKET_DATA_DIR", str(data / "market"), r),
            history_days=_number("MARKET_HISTORY_DAYS", 520, r),
            date_format=_text("MARKET_DATA_DATE_FORMAT", "", r).or_none(),
            ibkr=ibkr,
        ),
        "llm": r.build(
            LlmResource,
            _check_llm,
            provider=_text("LLM_PROVIDER", "offline", r),
            model=_text("LLM_MODEL", "", r).or_none(),
            api_base_url=_text("LLM_API_BASE_URL", "", r).or_none(),
            openai_api_key=_secret("OPENAI_API_KEY", r),
            anthropic_api_key=_secret("ANTHROPIC_API_KEY", r),
            timeout_seconds=_number("LLM_TIMEOUT_SECONDS", 60.0, r),
            max_attempts=_number("LLM_MAX_ATTEMPTS", 3, r),
            max_output_tokens=_number("LLM_MAX_OUTPUT_TOKENS", 2048, r),
            price_table_path=_text("LLM_PRICE_TABLE", "", r).or_none(),
        ),
        "broker": r.build(
            BrokerResource,
            BrokerResource.trading_mode,
            mode=_text("TRADING_MODE", "simulate", r),
            paper_state_url=f"sqlite:///{data / 'paper_broker.db'}",
            starting_cash=_number("PAPER_STARTING_CASH", 100_000.0, r),
            live_confirm=_text("IBKR_LIVE_CONFIRM", "", r),
            **_set_numbers(
                r,
                BrokerResource,
                commission_per_share="COMMISSION_PER_SHARE",
                commission_min="COMMISSION_MIN",
                slippage_bps="SLIPPAGE_BPS",
            ),
            ibkr=ibkr,
        ),
        "evaluation": r.build(
            EvaluationSettings,
            **_set_numbers(
                r,
                EvaluationSettings,
                exit_after_sessions="EVAL_EXIT_AFTER_SESSIONS",
                bootstrap_resamples="EVAL_BOOTSTRAP_RESAMPLES",
            ),
        ),
        "policy": r.build(
            TradingPolicy,
            min_confidence=_number("MIN_CONFIDENCE", 50.0, r),
            min_risk_reward=_number("MIN_RISK_REWARD", 1.5, r),
            trading_enabled=_flag("TRADING_ENABLED", True, r),
            max_notional_per_order=_number("MAX_NOTIONAL_PER_ORDER", 25_000.0, r),
            max_position_notional=_number("MAX_POSITION_NOTIONAL", 50_000.0, r),
            max_entry_deviation_pct=_number("MAX_ENTRY_DEVIATION_PCT", 5.0, r),
            max_position_pct=_number("MAX_POSITION_PCT", 10.0, r),
            # A Literal field: pydantic names the choices; given as a value, not an EnvVar.
            sizing=_text("ORDER_SIZING", "percent", r).plain(str.lower),
            fixed_shares=_number("ORDER_FIXED_SHARES", 10, r),
            max_orders_per_day=_number("MAX_ORDERS_PER_DAY", 10, r),
            kill_switch=_flag("TRADING_KILL_SWITCH", False, r),
            kill_switch_file=_text("KILL_SWITCH_FILE", str(data / "KILL_SWITCH"), r),
        ),
    }
    from trading_assets.preflight import preflight_for

    # The same instances again: the services a run uses, checked by its first step.
    resources["preflight"] = preflight_for(resources)
    return resources


def _browser_url_problem(raw: str) -> str | None:
    """ARTIFACT_BROWSER_URL is the base of links in the Dagster UI: http(s), host, no query."""
    parts = urlsplit(raw)
    if parts.scheme in ("http", "https") and parts.netloc and not (parts.query or parts.fragment):
        return None
    return (
        f"ARTIFACT_BROWSER_URL={mask_url(raw)!r} is not an http(s) URL: use the address the "
        f"artifact browser (`make web`) is reached at, e.g. ARTIFACT_BROWSER_URL="
        f"{_default(ArtifactIOManager, 'artifact_browser_url')}"
    )


def _check_places_and_times(r: SettingsReader) -> None:
    """What no resource validates: folders and free space, URLs, the cron, the start date."""
    data_raw = r.get("TRADING_DATA_DIR")
    r.problem(folder_problem("TRADING_DATA_DIR", data_raw, data_dir(r.env), _EXAMPLE_FOLDER))
    if spool := r.get("SPOOL_DIR"):
        r.problem(folder_problem("SPOOL_DIR", spool, Path(spool).resolve(), _EXAMPLE_FOLDER))
    if database := r.get("DATABASE_URL"):
        r.problem(database_url_problem(database))
    if webhook := r.get("ALERT_WEBHOOK_URL"):
        r.problem(webhook_problem(webhook))
    if browser := r.get("ARTIFACT_BROWSER_URL"):
        r.problem(_browser_url_problem(browser))
    r.problem(cron_problem(r.get("WORKFLOW_SCHEDULE") or DEFAULT_CRON))
    r.attempt(lambda: parse_start_date(r.get("TRADING_START_DATE") or DEFAULT_START_DATE))
    # The partitions are built from the process environment when the code is imported.
    loaded = start_date_error()
    if loaded is not None:
        r.problem(str(loaded))


def check_settings(env: Mapping[str, str] | None = None) -> list[str]:
    """Every setting in ``env`` (default: the process env) that cannot work, one line each.

    Reads values only (no connection is made): numbers, enumerations, paired settings, URLs, the
    cron, TRADING_START_DATE, and whether the data folder is writable with space left.
    """
    r = SettingsReader(os.environ if env is None else env)
    _resources(r)
    _check_places_and_times(r)
    return r.problems


def resources_from_environment(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every resource the graph needs, configured from ``env`` (default: the process env).

    Raises ``SettingError`` listing every setting that cannot work, one per line.
    """
    r = SettingsReader(os.environ if env is None else env)
    resources = _resources(r)
    _check_places_and_times(r)
    if r.problems:
        raise SettingError(r.problems)
    return resources
