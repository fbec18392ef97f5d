"""Trading modes and IBKR settings: simulate by default, live only with two explicit settings."""

from __future__ import annotations

import pytest

from resources.broker import LIVE_CONFIRMATION, BrokerConfigError, BrokerResource
from resources.ibkr import IbkrResource
from trading_assets.environment import SettingError, resources_from_environment


def _broker(mode: str, port: int = 7497, confirm: str = "") -> BrokerResource:
    return BrokerResource(mode=mode, live_confirm=confirm, ibkr=IbkrResource(port=port))


def test_simulate_is_the_default(data_env: dict[str, str]) -> None:
    resources = resources_from_environment(data_env)
    assert resources["broker"].trading_mode() == "simulate"
    assert resources["market_source"].kind() == "synthetic"
    assert resources["broker"].ibkr.address == "127.0.0.1:7497"


def test_live_needs_the_mode_and_the_confirmation() -> None:
    with pytest.raises(BrokerConfigError, match="IBKR_LIVE_CONFIRM"):
        _broker("ibkr-live", port=4001).trading_mode()
    with pytest.raises(BrokerConfigError, match="IBKR_LIVE_CONFIRM"):
        _broker("ibkr-live", port=4001, confirm="yes").trading_mode()
    live = _broker("ibkr-live", port=4001, confirm=LIVE_CONFIRMATION)
    assert live.trading_mode() == "ibkr-live" and "LIVE" in live.describe()
    # The confirmation alone changes nothing: the mode is still the simulator.
    assert _broker("simulate", confirm=LIVE_CONFIRMATION).trading_mode() == "simulate"


def test_ports_must_match_the_mode() -> None:
    with pytest.raises(BrokerConfigError, match="IBKR_PORT=7497 is the TWS paper port"):
        _broker("ibkr-live", port=7497, confirm=LIVE_CONFIRMATION).trading_mode()
    with pytest.raises(BrokerConfigError, match="IBKR_PORT=4001 is the IB Gateway live port"):
        _broker("ibkr-paper", port=4001).trading_mode()
    assert _broker("ibkr-paper", port=4004).trading_mode() == "ibkr-paper"  # custom: not judged


def test_an_unknown_mode_names_the_variable() -> None:
    with pytest.raises(BrokerConfigError, match="TRADING_MODE='paper'"):
        _broker("paper").trading_mode()


def test_ibkr_settings_come_from_the_environment(data_env: dict[str, str]) -> None:
    env = {**data_env, "IBKR_HOST": "gateway", "IBKR_PORT": "4002", "IBKR_CLIENT_ID": "7",
           "IBKR_CONNECT_TIMEOUT": "3", "IBKR_REQUEST_TIMEOUT": "20",
           "MARKET_DATA_SOURCE": "ibkr", "TRADING_MODE": "ibkr-paper",
           "ORDER_SIZING": "fixed", "ORDER_FIXED_SHARES": "5", "MAX_ORDERS_PER_DAY": "4"}
    resources = resources_from_environment(env)
    ibkr = resources["broker"].ibkr
    assert (ibkr.host, ibkr.port, ibkr.client_id) == ("gateway", 4002, 7)
    assert (ibkr.connect_timeout_seconds, ibkr.request_timeout_seconds) == (3, 20)
    assert resources["market_source"].ibkr is ibkr and resources["market_source"].kind() == "ibkr"
    assert "gateway:4002" in resources["broker"].describe()
    limits = resources["policy"].limits()
    assert (limits.sizing, limits.fixed_shares, limits.max_orders_per_day) == ("fixed", 5, 4)
    assert resources["policy"].kill_switch_file.endswith("KILL_SWITCH")


def test_a_bad_sizing_names_the_variable(data_env: dict[str, str]) -> None:
    with pytest.raises(SettingError, match="ORDER_SIZING='shares'"):
        resources_from_environment({**data_env, "ORDER_SIZING": "shares"})


def test_price_sanity_and_size_cap_come_from_the_environment(data_env: dict[str, str]) -> None:
    defaults = resources_from_environment(data_env)["policy"].limits()
    assert (defaults.max_entry_deviation_pct, defaults.max_position_pct,
            defaults.min_risk_reward) == (5, 10, 1.5)
    env = {**data_env, "MAX_ENTRY_DEVIATION_PCT": "2.5", "MAX_POSITION_PCT": "4",
           "MIN_RISK_REWARD": "2"}
    limits = resources_from_environment(env)["policy"].limits()
    assert (limits.max_entry_deviation_pct, limits.max_position_pct,
            limits.min_risk_reward) == (2.5, 4, 2)
