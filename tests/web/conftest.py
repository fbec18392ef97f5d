"""Stores filled once: a real pipeline run (two symbols, their outcomes, a scorecard) on SQLite and
the local folder, shared by the API, page and browser tests; and the PostgreSQL and S3 servers of
tests/servers.py for the production-store tests.

Under pytest-xdist the first worker that needs the run makes it (under a file lock) and the
others read the same folder: one run per test session, whichever worker the files land on.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dagster as dg
import pytest
from filelock import FileLock

from sql.dagster_event_log import pin_base_dir
from tests.conftest import TRADING_DAY
from tests.servers import postgres_url, s3_server
from trading_assets.definitions import build_definitions
from trading_assets.environment import resources_from_environment
from trading_assets.partitions import partition_key_for
from trading_assets.run_report import quiet_run_config

__all__ = ["pipeline", "postgres_url", "s3_server"]

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = ("TSLA", "NVDA")


@dataclass
class Pipeline:
    """A data folder and Dagster home after one run per symbol, outcomes and a scorecard."""

    env: dict[str, str]
    home: str
    runs: dict[str, str] = field(default_factory=dict)  # symbol -> run id
    scorecard_run: str = ""

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(self.home)


def _fill(root: Path, mlflow_uri: str) -> Pipeline:
    home = root / "dagster_home"
    home.mkdir(parents=True)
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")  # as `trading-signals` does
    pin_base_dir(home / "dagster.yaml")  # opened in this process, whose DAGSTER_HOME is another
    env = {"TRADING_DATA_DIR": str(root / "data"), "MLFLOW_TRACKING_URI": mlflow_uri}
    filled = Pipeline(env=env, home=str(home))
    with filled.instance() as instance:
        instance.add_dynamic_partitions("symbol", list(SYMBOLS))
        defs = build_definitions(resources_from_environment(env))

        def run(job: str, key: dg.MultiPartitionKey | None = None) -> str:
            result = defs.resolve_job_def(job).execute_in_process(
                partition_key=key, instance=instance, run_config=quiet_run_config()
            )
            return result.run_id

        for symbol in SYMBOLS:
            filled.runs[symbol] = run("trading_signals_job", partition_key_for(symbol, TRADING_DAY))
        for symbol in SYMBOLS:
            run("signal_outcome_job", partition_key_for(symbol, TRADING_DAY))
        filled.scorecard_run = run("scorecard_job")
    return filled


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory, shared_mlflow_uri: str) -> Pipeline:
    base = tmp_path_factory.getbasetemp()
    # Every xdist worker's base is a folder of the session's one; alone, the session's own.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root, done = shared / "web-pipeline", shared / "web-pipeline.json"
    with FileLock(str(shared / "web-pipeline.lock")):
        if not done.exists():
            done.write_text(json.dumps(asdict(_fill(root, shared_mlflow_uri))))
    return Pipeline(**json.loads(done.read_text()))
