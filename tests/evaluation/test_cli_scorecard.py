"""`trading-signals scorecard` as a user runs it: score what has closed, print, point at plots."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import cli_env  # noqa: F401  (the fixture)
from trading_assets.cli import main


def test_scorecard_scores_closed_horizons_then_prints_the_table(
    cli_env: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    for day in ("2025-06-02", "2025-06-03"):
        assert main(["run", "--date", day, "--symbols", "TSLA"]) == 0
    capsys.readouterr()
    assert main(["scorecard"]) == 0
    out = capsys.readouterr().out
    assert "scoring 2 signals whose horizon has closed" in out
    assert "symbols (1): TSLA" in out and "buy and hold" in out and "verdict:" in out
    assert "scorecard_equity_curve" in out and "scorecard_calibration" in out
    # Already scored: a second call scores nothing again and prints the same card.
    assert main(["scorecard", "--by", "model"]) == 0
    again = capsys.readouterr().out
    assert "scoring" not in again.splitlines()[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["scorecard", "--start", "06/02/2025"], "--start '06/02/2025' is not a date"),
        (["scorecard", "--start", "2025-06-05", "--end", "2025-06-02"], "is after --end"),
        (["scorecard", "--symbols", "BRK|B"], "is not a ticker symbol"),
    ],
)
def test_scorecard_refuses_bad_input_in_one_line(
    cli_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str  # noqa: F811
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
