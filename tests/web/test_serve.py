"""`trading-signals serve` settings: loopback by default, a token for any other address, the UI
base URLs; refused in one line before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from trading_assets.cli import main
from trading_assets.errors import SettingError
from trading_assets.web.settings import BrowserSettings, is_loopback

TOKEN = "0123456789abcdef0123"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses_need_no_token(host: str) -> None:
    assert is_loopback(host)
    assert BrowserSettings.from_env({}, host=host).token is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "browser.internal"])
def test_any_other_address_needs_a_long_token(host: str) -> None:
    with pytest.raises(SettingError) as refused:
        BrowserSettings.from_env({}, host=host)
    (problem,) = refused.value.problems
    assert f"serving on {host}" in problem and "ARTIFACT_BROWSER_TOKEN" in problem
    with pytest.raises(SettingError, match="at least 16"):
        BrowserSettings.from_env({"ARTIFACT_BROWSER_TOKEN": "short"}, host=host)
    settings = BrowserSettings.from_env({"ARTIFACT_BROWSER_TOKEN": TOKEN}, host=host)
    assert settings.token == TOKEN and TOKEN not in repr(settings)


def test_the_ui_links_are_settings_checked_as_urls() -> None:
    settings = BrowserSettings.from_env(
        {"DAGSTER_UI_URL": "https://dagster.example.com/", "MLFLOW_UI_URL": "http://m:5000"}
    )
    assert settings.dagster_run_url("abc") == "https://dagster.example.com/runs/abc"
    assert settings.mlflow_run_url("3", "r1") == "http://m:5000/#/experiments/3/runs/r1"
    defaults = BrowserSettings.from_env({})
    assert defaults.dagster_run_url("abc") == "http://127.0.0.1:3000/runs/abc"
    with pytest.raises(SettingError) as refused:
        BrowserSettings.from_env({"DAGSTER_UI_URL": "dagster:3000",
                                  "MLFLOW_UI_URL": "ftp://user:pw@host"}, port=70000)
    problems = refused.value.problems
    assert len(problems) == 3 and not any("pw@" in p for p in problems)


def test_serve_refuses_an_open_address_without_a_token_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ARTIFACT_BROWSER_TOKEN", raising=False)
    monkeypatch.setenv("TRADING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: serving on 0.0.0.0 (not a loopback")
    assert not (tmp_path / "home").exists()  # refused before anything was created
