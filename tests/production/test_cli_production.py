"""The commands a newcomer runs against PostgreSQL and S3: `db upgrade` on an empty, an older
and a foreign database, `config`, and `make run`'s two steps (upgrade, then run)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from sql.engine import create_database_engine
from sql.migrate import alembic_config, current_revision, head_revision
from tests.servers import S3Server
from trading_assets.cli import main
from trading_assets.environment import resources_from_environment

pytestmark = pytest.mark.integration


def _with_password(url: str, password: str) -> str:
    # Trust auth ignores the password, which lets the tests check it never leaks.
    return url.replace("postgres@", f"postgres:{password}@", 1)


@pytest.fixture
def cli_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, s3_server: S3Server,
    bucket: str,
) -> dict[str, str]:
    env = {
        "TRADING_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "DATABASE_URL": _with_password(postgres_url, "pg-s3cret"),
        **s3_server.minio_env(bucket),
    }
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _execute(connection_url: str, *statements: str) -> None:
    engine = create_database_engine(connection_url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def test_db_upgrade_on_an_empty_database_then_again(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert f"schema empty -> {head_revision()}" in out
    assert "postgres:***@127.0.0.1" in out and "pg-s3cret" not in out
    assert main(["db", "upgrade"]) == 0
    assert f"schema {head_revision()} -> {head_revision()}" in capsys.readouterr().out


def test_db_upgrade_brings_an_older_database_to_head(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = cli_env["DATABASE_URL"]
    assert main(["db", "upgrade"]) == 0
    # The only older revision there is: base (what a database from before the first migration
    # is at). Downgrading is the migrations' own way back there.
    engine = create_database_engine(url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    engine.dispose()
    assert current_revision(url) is None
    capsys.readouterr()
    assert main(["db", "upgrade"]) == 0
    assert f"schema empty -> {head_revision()}" in capsys.readouterr().out
    assert current_revision(url) == head_revision()


def test_db_upgrade_refuses_a_table_it_did_not_create(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = cli_env["DATABASE_URL"]
    # The previous system's table: same name, older columns, no migration history.
    _execute(url, "CREATE TABLE artifacts (id SERIAL PRIMARY KEY, name TEXT, type TEXT)")
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert "already has an `artifacts` table that these migrations did not create" in err
    assert "ALTER TABLE artifacts RENAME TO artifacts_old" in err
    assert "pg-s3cret" not in err and "Traceback" not in err
    assert current_revision(url) is None  # untouched
    _execute(url, "ALTER TABLE artifacts RENAME TO artifacts_old")
    assert main(["db", "upgrade"]) == 0


def test_db_upgrade_on_a_server_that_is_down_says_so(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.servers import free_port

    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql://postgres:pg-s3cret@127.0.0.1:{free_port()}/nothing"
    )
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to the artifact database postgresql+psycopg2://postgres:***@" in err
    assert "check DATABASE_URL" in err and "pg-s3cret" not in err


def test_config_shows_the_database_and_the_bucket(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], bucket: str
) -> None:
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "postgresql+psycopg2://postgres:***@127.0.0.1:5432/" in out
    assert f"s3://{bucket} at {cli_env['MINIO_ENDPOINT']}" in out
    assert "pg-s3cret" not in out and cli_env["MINIO_SECRET_KEY"] not in out


def test_make_runs_two_steps_on_an_empty_postgres_and_a_new_bucket(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], bucket: str
) -> None:
    # What `make run` does: the migrations first, then the run.
    assert main(["db", "upgrade"]) == 0
    assert main(["run", "--date", "2025-06-02", "--symbols", "TSLA"]) == 0
    out = capsys.readouterr().out
    assert f"s3://{bucket}/market_data/TSLA/2025-06-02/" in out
    resources = resources_from_environment(dict(cli_env))
    rows = resources["artifact_db"].query(symbol="TSLA")
    assert len(rows) == 7
    store = resources["object_store"]
    for row in rows:
        assert row.object_uri.startswith(f"s3://{bucket}/") and store.exists(row.object_uri)


def test_doctor_on_postgres_and_s3_up_behind_and_with_a_rejected_key(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def lines() -> dict[str, str]:
        main(["doctor"])
        out = capsys.readouterr().out
        assert "pg-s3cret" not in out and cli_env["MINIO_SECRET_KEY"] not in out
        return {line.split()[1]: line for line in out.splitlines() if line[:2] in ("OK", "PR")}

    behind = lines()["database"]  # an empty PostgreSQL: the schema is not applied by itself
    assert behind.startswith("PROBLEM") and "`trading-signals db upgrade`" in behind
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    up = lines()
    assert up["database"].startswith("OK") and "postgres:***@127.0.0.1" in up["database"]
    assert up["objects"].startswith("OK") and "writable" in up["objects"]
    monkeypatch.setenv("MINIO_SECRET_KEY", "wrong-" + cli_env["MINIO_SECRET_KEY"])
    rejected = lines()["objects"]
    assert rejected.startswith("PROBLEM") and cli_env["MINIO_BUCKET"] in rejected
