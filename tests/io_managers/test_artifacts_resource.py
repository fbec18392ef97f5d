"""One resource owns the artifact store: every writer honours the configured write policy."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest

from tests.io_managers import examples
from trading_assets.environment import resources_from_environment
from trading_assets.jobs import reconcile_spool

ROOT = Path(__file__).resolve().parents[2]


def test_the_reconcile_job_retries_as_storage_write_attempts_says(
    data_env: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    env = {**data_env, "STORAGE_WRITE_ATTEMPTS": "2", "STORAGE_RETRY_BASE_SECONDS": "0.01",
           "STORAGE_RETRY_MAX_SECONDS": "0.02"}
    objects = Path(env["TRADING_DATA_DIR"]) / "objects"
    objects.parent.mkdir(parents=True)
    objects.write_text("a file where the object folder should be: every put fails")
    resources = resources_from_environment(env)
    assert resources["artifacts"].store().policy.attempts == 2
    spooled = resources["artifacts"].store().write_or_spool(
        examples.order(), spool=resources["spool"], asset_name="order", symbol="TSLA",
        partition_key="2025-01-02|TSLA", partition_date=examples.DAY,
        job_name="trading_signals_job", run_id="run-1", step_key="order",
    )
    assert spooled.spooled is not None
    # The job's op, as its run would call it (a run would then wait a minute to retry).
    with (
        dg.build_op_context(resources={"artifacts": resources["artifacts"],
                                       "broker": resources["broker"]}) as context,
        pytest.raises(dg.Failure, match="not empty"),
    ):
        reconcile_spool(context)
    # The op's log (Dagster's console logger, on stderr) names each failed attempt.
    attempts = re.findall(r"attempt \d/\d failed", capfd.readouterr().err)
    assert attempts and all("/2 failed" in m for m in attempts), attempts
    assert resources["spool"].count() == 1  # still waiting: nothing lost


def test_no_artifact_store_is_built_outside_the_artifacts_resource() -> None:
    # The code location builds its stores in io_managers/artifacts.py only (the bench and the
    # tests may build their own).
    built = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("trading_assets", "resources", "io_managers")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "artifacts.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bArtifactStore\(", line) and "class ArtifactStore" not in line
    ]
    assert built == []
