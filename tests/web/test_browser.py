"""The pages in headless Chromium, served by `trading-signals serve` in its own process (one per
test session), over a real pipeline run; screenshots of the pages for the README (see SCREENSHOTS).

Chromium and its chromedriver are Debian's (`make browser-deps`, run by `make test`); Selenium is
pointed at both, so Selenium Manager never downloads anything.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.servers import free_port, stop_process_group, unavailable
from tests.web.conftest import REPO, Pipeline

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# The README's screenshots are refreshed on request (SCREENSHOTS_DIR=docs/screenshots make test
# PYTEST_ARGS=tests/web/test_browser.py); otherwise a test run leaves the repository untouched.
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or tempfile.mkdtemp(prefix="screenshots-"))
START_TIMEOUT_S = 60.0
WAIT_S = 15.0
WIDTH, MAX_HEIGHT = 1280, 1500


@pytest.fixture(scope="session")
def server(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`trading-signals serve` on a free port over the pipeline's stores and Dagster home."""
    port = free_port()
    env = {**os.environ, **pipeline.env, "DAGSTER_HOME": pipeline.home}
    env.pop("ARTIFACT_BROWSER_TOKEN", None)
    log_path = tmp_path_factory.mktemp("browser") / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("trading-signals")), "serve", "--port", str(port)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/artifacts?limit=1", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"`trading-signals serve` did not start:\n"
                                f"{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
        yield base
    finally:
        stop_process_group(process)


@pytest.fixture(scope="session")
def driver() -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        unavailable(f"{' and '.join(missing)} not installed: `make browser-deps` installs "
                    "Debian's chromium and chromium-driver (make test does it first)")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", f"--window-size={WIDTH},900", "--hide-scrollbars"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                               options=options)
    browser.set_page_load_timeout(30)
    browser.set_script_timeout(10)
    try:
        yield browser
    finally:
        browser.quit()


def _api(base: str, path: str) -> Any:
    with urllib.request.urlopen(f"{base}{path}", timeout=10) as response:
        return json.load(response)


def _id(base: str, step: str, symbol: str = "TSLA") -> int:
    rows = _api(base, f"/api/artifacts?symbol={symbol}&limit=100")["artifacts"]
    return next(r["id"] for r in rows if r["step_name"] == step)


def _loaded(driver: WebDriver, image: WebElement) -> int:
    """The image's natural width once the browser has decoded it (0: it did not load)."""
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.execute_script("return arguments[0].complete", image)
    )
    return int(driver.execute_script("return arguments[0].naturalWidth", image))


def _screenshot(driver: WebDriver, name: str) -> None:
    """The page (up to MAX_HEIGHT tall) as a small palette PNG in SCREENSHOTS."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(WIDTH, min(max(height, 600), MAX_HEIGHT))
    try:
        shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    finally:
        driver.set_window_size(WIDTH, 900)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    small = shot.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    small.save(SCREENSHOTS / f"{name}.png", optimize=True)


def _rows(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "tr.artifact")


def test_the_list_page_shows_every_artifact_of_the_runs(
    driver: WebDriver, server: str, pipeline: Pipeline
) -> None:
    driver.get(f"{server}/")
    total = _api(server, "/api/artifacts?limit=1")["total"]
    assert len(_rows(driver)) == total == 19
    runs = driver.find_elements(By.CSS_SELECTOR, "section.run")
    tsla = next(r for r in runs if pipeline.runs["TSLA"][:8] in r.text)
    header = tsla.find_element(By.TAG_NAME, "header")
    assert "SUCCESS" in header.text and "2025-06-02|TSLA" in header.text
    link = header.find_element(By.CSS_SELECTOR, "a.run-id").get_attribute("href")
    assert link == f"http://127.0.0.1:3000/runs/{pipeline.runs['TSLA']}"
    steps = [row.find_elements(By.TAG_NAME, "td")[2].text for row in
             tsla.find_elements(By.CSS_SELECTOR, "tr.artifact")]
    assert sorted(steps) == sorted(["market_data", "daily_chart", "weekly_chart", "llm_analysis",
                                    "trading_signal", "order", "portfolio"])
    _screenshot(driver, "list")


def test_a_filter_narrows_the_list(driver: WebDriver, server: str) -> None:
    driver.get(f"{server}/")
    everything = len(_rows(driver))
    Select(driver.find_element(By.NAME, "type")).select_by_value("chart")
    driver.find_element(By.ID, "apply").click()
    WebDriverWait(driver, WAIT_S).until(lambda d: "type=chart" in d.current_url)
    charts = _rows(driver)
    assert 0 < len(charts) == 4 < everything
    assert {row.get_attribute("data-type") for row in charts} == {"chart"}
    symbol = driver.find_element(By.NAME, "symbol")
    symbol.send_keys("nvda")
    driver.find_element(By.ID, "apply").click()
    WebDriverWait(driver, WAIT_S).until(lambda d: "symbol=nvda" in d.current_url)
    assert {row.get_attribute("data-symbol") for row in _rows(driver)} == {"NVDA"}
    assert len(_rows(driver)) == 2 and driver.find_element(By.ID, "total").text == "2"


def test_the_chart_page_shows_the_chart_at_full_size(driver: WebDriver, server: str) -> None:
    driver.get(f"{server}/?view=list&type=chart&symbol=TSLA")
    chart_id = _id(server, "daily_chart")
    driver.find_element(By.CSS_SELECTOR, f'a[href="/artifacts/{chart_id}"]').click()
    WebDriverWait(driver, WAIT_S).until(lambda d: d.current_url.endswith(f"/artifacts/{chart_id}"))
    image = driver.find_element(By.ID, "image")
    assert _loaded(driver, image) == 1400  # the stored PNG's own width
    _screenshot(driver, "chart")


def test_the_llm_page_shows_the_prompt_and_both_images_sent(
    driver: WebDriver, server: str
) -> None:
    llm = _api(server, f"/api/artifacts/{_id(server, 'llm_analysis')}")
    driver.get(f"{server}/artifacts/{llm['id']}")
    prompt = driver.find_element(By.ID, "prompt").text
    for line in (line.strip() for line in llm["prompt"].splitlines()):
        assert line in prompt
    sent = driver.find_elements(By.CSS_SELECTOR, "img.sent")
    assert len(sent) == 2 and all(_loaded(driver, image) > 0 for image in sent)
    assert '"action"' in driver.find_element(By.ID, "response").text
    _screenshot(driver, "llm")


def test_the_signal_page_is_a_card(driver: WebDriver, server: str) -> None:
    signal = _api(server, f"/api/artifacts/{_id(server, 'trading_signal')}")
    driver.get(f"{server}/artifacts/{signal['id']}")
    card = driver.find_element(By.ID, "signal-card")
    assert card.find_element(By.CLASS_NAME, "action").text == signal["action"]
    assert signal["signal_data"]["reasoning"] in card.text
    _screenshot(driver, "signal")


def test_the_symbol_page_draws_the_signals_on_the_price(driver: WebDriver, server: str) -> None:
    driver.get(f"{server}/symbols/TSLA")
    assert _loaded(driver, driver.find_element(By.ID, "signal-chart")) == 1100
    plots = driver.find_elements(By.CSS_SELECTOR, "img.sent")
    assert len(plots) == 2 and all(_loaded(driver, image) > 0 for image in plots)
    _screenshot(driver, "symbol")
