"""The doctor's checks of the outside services a run calls (MLflow, the IB gateway, the LLM API)
and the one-line ``Finding`` every doctor check reports.

Each check answers within its ``budget`` seconds on its own (short connect and request timeouts,
at most one retry), so a service that is down is named with its address, not as a timeout.
No line holds a secret: URIs are masked, account ids shortened, API keys never read into text.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from resources.mlflow_tracking import local_store_path, mask_uri
from resources.settings_check import nearest_existing
from sql.engine import url_secrets

# Trading never waits for MLflow: mlflow_run is the last asset of a partition.
MLFLOW_ASIDE = "trading is unaffected (mlflow_run comes last), but runs go unlogged until then"
MODELS_SHOWN = 5


@dataclass(frozen=True)
class Finding:
    service: str
    ok: bool
    detail: str

    def line(self, width: int = 12) -> str:
        return f"{'OK' if self.ok else 'PROBLEM':<8} {self.service:<{width}} {self.detail}"


# ---------------------------------------------------------------- MLflow


def mlflow_check(tracking: Any, budget: float) -> Finding:
    """A tracking server answers an experiments search; a local SQLite store's folder is writable.

    Neither imports mlflow (seconds of import time for a yes/no).
    """
    uri = str(tracking.tracking_uri)
    if urlsplit(uri).scheme.lower() in ("http", "https"):
        return _mlflow_server(uri, min(tracking.timeout_seconds, budget * 0.8))
    store, shown = local_store_path(uri), mask_uri(uri)
    if store is None:
        return Finding("mlflow", True, f"{shown}: not checked (neither a server nor SQLite)")
    return _mlflow_local(store, shown)


def _mlflow_server(uri: str, timeout: float) -> Finding:
    shown = mask_uri(uri)
    request = urllib.request.Request(
        f"{_without_userinfo(uri)}/api/2.0/mlflow/experiments/search?max_results=1",
        headers=_mlflow_auth(uri),
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return Finding("mlflow", True, f"{shown}: the tracking server answers")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return Finding(
                "mlflow", False,
                f"{shown} rejected the credentials (HTTP {exc.code}): check "
                "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)",
            )
        return Finding(
            "mlflow", False,
            f"{shown} answered HTTP {exc.code} to an experiments search: is MLFLOW_TRACKING_URI "
            f"an MLflow tracking server? ({MLFLOW_ASIDE})",
        )
    except (OSError, ValueError) as exc:  # refused, unresolvable, timed out (URLError is one)
        reason = getattr(exc, "reason", exc)
        cause = _scrub(f"{type(reason).__name__}: {reason}", uri)
        return Finding(
            "mlflow", False,
            f"cannot reach {shown} ({cause}): start the tracking server or fix "
            f"MLFLOW_TRACKING_URI; {MLFLOW_ASIDE}",
        )


def _without_userinfo(uri: str) -> str:
    parts = urlsplit(uri.rstrip("/"))
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _mlflow_auth(uri: str) -> dict[str, str]:
    """The Authorization header MLflow's own client would send (its variables, or the URI)."""
    # MLflow reads these from the process environment only; so does this check.
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    parts = urlsplit(uri)
    user = os.environ.get("MLFLOW_TRACKING_USERNAME") or parts.username
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD") or parts.password
    if not user:
        return {}
    pair = base64.b64encode(f"{user}:{password or ''}".encode()).decode("ascii")
    return {"Authorization": f"Basic {pair}"}


def _scrub(text: str, uri: str) -> str:
    for secret in sorted(url_secrets(uri), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _mlflow_local(store: Path, shown: str) -> Finding:
    folder = store.parent
    existing = nearest_existing(folder)
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is a file")
        # A real write, not os.access: it also holds for root and read-only mounts.
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".doctor-"):
            pass
        if store.exists():
            with store.open("ab"):
                pass
    except OSError as exc:
        return Finding(
            "mlflow", False,
            f"{shown}: cannot write {existing} ({type(exc).__name__}: {exc}): fix the folder's "
            f"permissions or point MLFLOW_TRACKING_URI elsewhere; {MLFLOW_ASIDE}",
        )
    state = "" if folder.exists() else f" ({folder} is created on first use)"
    return Finding("mlflow", True, f"{shown}: local store, writable{state}")


# ---------------------------------------------------------------- IB gateway


def gateway_used(broker: Any, market_source: Any) -> bool:
    """Whether TRADING_MODE or MARKET_DATA_SOURCE sends anything to TWS / IB Gateway."""
    from resources.broker import BROKER_MODES

    return (
        broker.mode.strip().lower() in BROKER_MODES
        or market_source.source.strip().lower() == "ibkr"
    )


def gateway_check(
    broker: Any, market_source: Any, watchlist: Any, now: dt.datetime, budget: float
) -> Finding:
    """Connects with the configured client id; the account suits TRADING_MODE; one watched
    symbol's daily bars can be read when the market data come from IBKR."""
    from resources.broker import BROKER_MODES
    from resources.ibkr import IbkrError, IbkrUnreachableError

    mode = broker.trading_mode()  # BrokerConfigError (a mode/port mismatch) says what to change
    trades, data = mode in BROKER_MODES, market_source.kind() == "ibkr"
    if not trades and not data:
        return Finding(
            "gateway", True,
            f"not used (TRADING_MODE={mode}, market data {market_source.kind()})",
        )
    configured = broker.ibkr if trades else market_source.ibkr
    # ib_async bounds the whole connect (handshake and account sync) by the request timeout
    # too: one limit for the connect and each of the two requests keeps all three in the budget.
    each = min(configured.connect_timeout_seconds, configured.request_timeout_seconds, budget * 0.3)
    ibkr = configured.model_copy(
        update={"connect_timeout_seconds": each, "request_timeout_seconds": each,
                "pacing_retries": 0}
    )
    settings = _gateway_settings(trades, data)
    try:
        with ibkr.session() as session:
            detail = _gateway_session(session, mode if trades else None, data, watchlist, now)
    except IbkrUnreachableError as exc:
        if not isinstance(exc.__cause__, OSError):  # the socket opened, the API session did not
            return Finding("gateway", False, f"{exc}")
        return Finding(
            "gateway", False,
            f"nothing answers at {ibkr.address} ({type(exc.__cause__).__name__}): start TWS or "
            f"IB Gateway with the API enabled, socket port {ibkr.port}, or change {settings}",
        )
    except (IbkrError, ConnectionError) as exc:
        return Finding("gateway", False, f"{exc}")
    return Finding("gateway", True, f"{ibkr.describe()}: {detail}")


def _gateway_settings(trades: bool, data: bool) -> str:
    names = ["IBKR_HOST", "IBKR_PORT"]
    names += ["TRADING_MODE"] if trades else []
    names += ["MARKET_DATA_SOURCE"] if data else []
    return " / ".join(names)


def _gateway_session(
    session: Any, mode: str | None, data: bool, watchlist: Any, now: dt.datetime
) -> str:
    from resources.ibkr import mask_account
    from resources.ibkr_broker import IbkrBroker
    from trading_assets.calendar import latest_completed_session

    if mode is not None:
        # The broker's own judgement: IbkrError when the account is not of the mode's kind.
        account = IbkrBroker(session, mode).account
        kind = "paper" if mode == "ibkr-paper" else "LIVE"
        parts = [f"{kind} account {mask_account(account)} matches TRADING_MODE={mode}"]
    else:
        parts = [f"account {mask_account(session.account_id())} (market data only)"]
    if data:
        symbol = watchlist.current()[0]
        day = latest_completed_session(now)
        session.daily_bars(symbol, day, 1)
        parts.append(f"{symbol} daily bars to {day} readable")
    return "; ".join(parts)


# ---------------------------------------------------------------- LLM provider


def llm_used(llm: Any) -> bool:
    """Whether LLM_PROVIDER calls an API (an unknown provider counts: the check names it)."""
    return llm.provider.strip().lower() != "offline"


def llm_check(llm: Any, budget: float) -> Finding:
    """The key is accepted and the model listed, by a models-list call (no tokens spent)."""
    from resources.llm import KEY_VARIABLES, UNPRICED_LOCAL, LlmCallError, LlmConfigError, shown_url

    provider = llm.provider_name()
    if provider == "offline":
        return Finding("llm", True, "offline analyst: no API used")
    model, where = llm.model_name(), shown_url(llm.base_url(provider))
    try:
        served = llm.list_models(timeout_seconds=min(llm.timeout_seconds, budget * 0.4))
    except (LlmCallError, LlmConfigError) as exc:
        return Finding("llm", False, f"{exc}")
    if not model_listed(model, served):
        shown = ", ".join(sorted(served)[:MODELS_SHOWN]) or "none"
        more = f" and {len(served) - MODELS_SHOWN} more" if len(served) > MODELS_SHOWN else ""
        return Finding(
            "llm", False,
            f"{provider} at {where} does not serve model {model!r}: set LLM_MODEL to one it "
            f"lists ({shown}{more})",
        )
    try:
        price = llm.model_price(provider, model)
    except LlmConfigError as exc:
        return Finding("llm", False, f"{exc}")
    cost = price.describe() if price else UNPRICED_LOCAL + " (priced: false)"
    return Finding(
        "llm", True,
        f"{provider} {model} at {where}: {KEY_VARIABLES[provider]} accepted, model listed; {cost}",
    )


def model_listed(model: str, served: list[str]) -> bool:
    """``model`` or, for an alias, a dated snapshot of it (claude-sonnet-4-5 -> ...-20250929)."""
    stem = model.removesuffix("-latest")
    return model in served or any(name.startswith(f"{stem}-") for name in served)
