"""The one place the environment becomes resources: embedded defaults unless a variable is set.

Called when the code location loads (``@dg.definitions``), never at import. String settings are
bound with ``dg.EnvVar`` so the Dagster UI shows where a value comes from and secrets never
land in run config; typed flags are parsed here with an error naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from io_managers.artifact_io_manager import ArtifactIOManager
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
from resources.trading_policy import TradingPolicy
from resources.watchlist import WatchlistResource
from sql.engine import mask_url

DEFAULT_DATA_DIR = "data"


class SettingError(ValueError):
    """An environment variable holds a value that cannot work."""


def _text(name: str, default: str, env: Mapping[str, str]) -> str | dg.EnvVar:
    value = env.get(name, "").strip()
    if not value:
        return default
    # Bind the process environment lazily; an explicit mapping (tests, tools) is taken as is.
    return dg.EnvVar(name) if env is os.environ else value


def _secret(name: str, env: Mapping[str, str]) -> dg.EnvVar | None:
    # Always bound by name, even from an explicit mapping: a key never becomes run config the UI
    # shows. It is read from the process environment when the resource starts.
    return dg.EnvVar(name) if env.get(name, "").strip() else None


def _number(name: str, default: float, env: Mapping[str, str]) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingError(f"{name}={raw!r} is not a number (e.g. {name}={default:g})") from exc


def _flag(name: str, default: bool, env: Mapping[str, str]) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingError(f"{name}={raw!r} is not a true/false value: use true or false")


def _set_numbers(env: Mapping[str, str], **variables: str) -> dict[str, float]:
    """field -> value for each variable that is set; unset ones keep the field's own default."""
    values: dict[str, float] = {}
    for field, name in variables.items():
        if env.get(name, "").strip():
            values[field] = _number(name, 0.0, env)
    return values


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("TRADING_DATA_DIR", "").strip() or DEFAULT_DATA_DIR).resolve()


def workflow_schedule(env: Mapping[str, str] | None = None) -> str:
    """WORKFLOW_SCHEDULE, or weekdays at 09:00 New York time."""
    env = os.environ if env is None else env
    return env.get("WORKFLOW_SCHEDULE", "").strip() or "0 9 * * 1-5"


# S3 bucket naming rules (3-63 characters: lower case, digits, dots, hyphens).
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def minio_endpoint_url(env: Mapping[str, str]) -> str | None:
    """MINIO_ENDPOINT as a URL: ``host:port`` (MinIO style) gets its scheme from MINIO_SECURE."""
    raw = env.get("MINIO_ENDPOINT", "").strip().rstrip("/")
    if not raw:
        return None
    secure = env.get("MINIO_SECURE", "").strip()
    if "://" in raw:
        scheme, _, rest = raw.partition("://")
        if scheme not in ("http", "https") or not rest or "/" in rest:
            raise SettingError(
                f"MINIO_ENDPOINT={mask_url(raw)!r} is not an endpoint: use host:port (e.g. "
                "minio:9000) or a URL without a path (e.g. http://minio:9000)"
            )
        if secure and _flag("MINIO_SECURE", False, env) != (scheme == "https"):
            raise SettingError(
                f"MINIO_ENDPOINT={mask_url(raw)!r} and MINIO_SECURE={secure!r} disagree: drop "
                "MINIO_SECURE or make it match the URL's scheme"
            )
        return raw
    if "/" in raw or " " in raw:
        raise SettingError(
            f"MINIO_ENDPOINT={mask_url(raw)!r} is not host:port: use e.g. minio:9000 or a URL "
            "such as https://s3.example.com"
        )
    # MinIO deployments are usually plain HTTP inside a private network: secure is opt-in.
    scheme = "https" if _flag("MINIO_SECURE", False, env) else "http"
    return f"{scheme}://{raw}"


def minio_bucket(env: Mapping[str, str]) -> str:
    from resources.s3_object_store import DEFAULT_BUCKET

    bucket = env.get("MINIO_BUCKET", "").strip() or DEFAULT_BUCKET
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        raise SettingError(
            f"MINIO_BUCKET={bucket!r} is not a valid bucket name: 3-63 lower-case letters, "
            f"digits, dots or hyphens, starting and ending with a letter or digit (e.g. "
            f"{DEFAULT_BUCKET})"
        )
    return bucket


def object_store_from_environment(env: Mapping[str, str], data: Path) -> ObjectStore:
    """The local object folder, or MinIO/S3 as soon as MINIO_ENDPOINT is set."""
    endpoint = minio_endpoint_url(env)
    if endpoint is None:
        return LocalObjectStore(root=str(data / "objects"))
    access_key = _text("MINIO_ACCESS_KEY", "", env) or None
    secret_key = _text("MINIO_SECRET_KEY", "", env) or None
    if (access_key is None) != (secret_key is None):
        missing = "MINIO_SECRET_KEY" if secret_key is None else "MINIO_ACCESS_KEY"
        raise SettingError(
            f"MINIO_ENDPOINT is set with only one of MINIO_ACCESS_KEY / MINIO_SECRET_KEY: set "
            f"{missing} too (or neither, to use the AWS credential chain)"
        )
    # boto3 and dagster-aws cost ~0.45 s to import: only when S3 is configured.
    from resources.s3_object_store import DEFAULT_REGION, s3_object_store

    return s3_object_store(
        endpoint_url=endpoint,
        bucket=minio_bucket(env),
        access_key=access_key,
        secret_key=secret_key,
        region=_text("MINIO_REGION", DEFAULT_REGION, env),
        max_attempts=int(_number("MINIO_MAX_ATTEMPTS", 3, env)),
    )


def ibkr_from_environment(env: Mapping[str, str]) -> IbkrResource:
    """The IBKR connection settings; only used when MARKET_DATA_SOURCE or TRADING_MODE is ibkr."""
    return IbkrResource(
        host=_text("IBKR_HOST", "127.0.0.1", env),
        port=int(_number("IBKR_PORT", 7497, env)),
        client_id=int(_number("IBKR_CLIENT_ID", 1, env)),
        account=_text("IBKR_ACCOUNT", "", env),
        connect_timeout_seconds=_number("IBKR_CONNECT_TIMEOUT", 10.0, env),
        request_timeout_seconds=_number("IBKR_REQUEST_TIMEOUT", 30.0, env),
    )


def order_sizing(env: Mapping[str, str]) -> str:
    sizing = env.get("ORDER_SIZING", "").strip().lower() or "percent"
    if sizing not in ("percent", "fixed"):
        raise SettingError(
            f"ORDER_SIZING={sizing!r} is not a sizing: use percent (the signal's suggested % of "
            "net liquidation) or fixed (ORDER_FIXED_SHARES shares)"
        )
    return sizing


def mlflow_from_environment(env: Mapping[str, str], data: Path) -> MlflowTracking:
    """MLFLOW_TRACKING_URI, or a local SQLite store (artifacts beside it) in the data folder."""
    uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    return MlflowTracking(
        tracking_uri=_text("MLFLOW_TRACKING_URI", f"sqlite:///{data / 'mlflow.db'}", env),
        # A server keeps artifacts where it is configured to; a local store keeps them in data/.
        artifact_root=None if uri and is_remote_uri(uri) else str(data / "mlartifacts"),
        timeout_seconds=_number("MLFLOW_TIMEOUT_SECONDS", 30.0, env),
        max_retries=int(_number("MLFLOW_MAX_RETRIES", 2, env)),
    )


def resources_from_environment(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every resource the graph needs, configured from ``env`` (default: the process env)."""
    env = os.environ if env is None else env
    data = data_dir(env)
    default_db = f"sqlite:///{data / 'artifacts.db'}"
    database = ArtifactDatabase(url=_text("DATABASE_URL", default_db, env))
    object_store = object_store_from_environment(env, data)
    spool = ArtifactSpool(directory=_text("SPOOL_DIR", str(data / "spool"), env))
    ibkr = ibkr_from_environment(env)
    return {
        "io_manager": ArtifactIOManager(
            database=database,
            object_store=object_store,
            spool=spool,
            write_attempts=int(_number("STORAGE_WRITE_ATTEMPTS", 4, env)),
            retry_base_seconds=_number("STORAGE_RETRY_BASE_SECONDS", 0.5, env),
            retry_max_seconds=_number("STORAGE_RETRY_MAX_SECONDS", 8.0, env),
            write_timeout_seconds=_number("STORAGE_WRITE_TIMEOUT_SECONDS", 30.0, env),
        ),
        "watchlist": WatchlistResource(
            symbols=_text("STOCK_SYMBOLS", "TSLA,NVDA", env),
            file=_text("WATCHLIST_FILE", "", env) or None,
        ),
        "notifier": WebhookNotifier(webhook_url=_text("ALERT_WEBHOOK_URL", "", env) or None),
        # The same instances, for checks and tools that read artifacts without loading them.
        "artifact_db": database,
        "object_store": object_store,
        "spool": spool,
        "mlflow": mlflow_from_environment(env, data),
        "market_source": MarketDataResource(
            source=_text("MARKET_DATA_SOURCE", "synthetic", env),
            data_dir=_text("MARKET_DATA_DIR", str(data / "market"), env),
            history_days=int(_number("MARKET_HISTORY_DAYS", 520, env)),
            date_format=_text("MARKET_DATA_DATE_FORMAT", "", env) or None,
            ibkr=ibkr,
        ),
        "llm": LlmResource(
            provider=_text("LLM_PROVIDER", "offline", env),
            model=_text("LLM_MODEL", "", env) or None,
            api_base_url=_text("LLM_API_BASE_URL", "", env) or None,
            openai_api_key=_secret("OPENAI_API_KEY", env),
            anthropic_api_key=_secret("ANTHROPIC_API_KEY", env),
            timeout_seconds=_number("LLM_TIMEOUT_SECONDS", 60.0, env),
            max_attempts=int(_number("LLM_MAX_ATTEMPTS", 3, env)),
            max_output_tokens=int(_number("LLM_MAX_OUTPUT_TOKENS", 2048, env)),
            price_table_path=_text("LLM_PRICE_TABLE", "", env) or None,
        ),
        "broker": BrokerResource(
            mode=_text("TRADING_MODE", "simulate", env),
            paper_state_url=f"sqlite:///{data / 'paper_broker.db'}",
            starting_cash=_number("PAPER_STARTING_CASH", 100_000.0, env),
            live_confirm=_text("IBKR_LIVE_CONFIRM", "", env),
            **_set_numbers(
                env,
                commission_per_share="COMMISSION_PER_SHARE",
                commission_min="COMMISSION_MIN",
                slippage_bps="SLIPPAGE_BPS",
            ),
            ibkr=ibkr,
        ),
        "evaluation": EvaluationSettings(
            **{
                k: int(v)
                for k, v in _set_numbers(
                    env,
                    exit_after_sessions="EVAL_EXIT_AFTER_SESSIONS",
                    bootstrap_resamples="EVAL_BOOTSTRAP_RESAMPLES",
                ).items()
            }
        ),
        "policy": TradingPolicy(
            min_confidence=_number("MIN_CONFIDENCE", 50.0, env),
            min_risk_reward=_number("MIN_RISK_REWARD", 1.5, env),
            trading_enabled=_flag("TRADING_ENABLED", True, env),
            max_notional_per_order=_number("MAX_NOTIONAL_PER_ORDER", 25_000.0, env),
            max_position_notional=_number("MAX_POSITION_NOTIONAL", 50_000.0, env),
            max_entry_deviation_pct=_number("MAX_ENTRY_DEVIATION_PCT", 5.0, env),
            max_position_pct=_number("MAX_POSITION_PCT", 10.0, env),
            sizing=order_sizing(env),
            fixed_shares=int(_number("ORDER_FIXED_SHARES", 10, env)),
            max_orders_per_day=int(_number("MAX_ORDERS_PER_DAY", 10, env)),
            kill_switch=_flag("TRADING_KILL_SWITCH", False, env),
            kill_switch_file=_text("KILL_SWITCH_FILE", str(data / "KILL_SWITCH"), env),
        ),
    }
