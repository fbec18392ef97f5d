"""Real servers for integration tests: a throwaway PostgreSQL database and an S3 (moto) server.

Test folders import the fixtures into their conftest.py (``from tests.servers import ...``).
PostgreSQL is the local server on 127.0.0.1:5432 (trust auth, user postgres): without it the
tests skip with the reason, and under ``CI=true`` they fail instead. The S3 server is moto's,
started once per test session in its own process, with IAM authentication switched on so wrong
credentials are rejected as MinIO would reject them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
S3_REGION = "us-east-1"
MOTO_START_TIMEOUT_S = 30.0

# The IAM calls that create the test user run before authentication starts (moto counts them).
_MOTO_SETUP_ACTIONS = 3
_S3_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (under CI=true) a test whose server is missing."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the tests against real servers must run)")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (yet)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- PostgreSQL


def postgres_admin_connection() -> psycopg2.extensions.connection:
    """An autocommit connection to the server's ``postgres`` database, or skip/fail."""
    try:
        connection = psycopg2.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5
        )
    except psycopg2.OperationalError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        unavailable(
            f"PostgreSQL at {PG_HOST}:{PG_PORT} (user {PG_USER}) is not reachable ({detail}); "
            "start a local server to run the PostgreSQL tests"
        )
    connection.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
    return connection


@contextmanager
def throwaway_postgres_database(prefix: str = "artifacts_test") -> Iterator[str]:
    """``postgresql+psycopg2://postgres@127.0.0.1:5432/<fresh db>``, dropped afterwards."""
    admin = postgres_admin_connection()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    with throwaway_postgres_database() as url:
        yield url


# ---------------------------------------------------------------- S3 (moto)


@dataclass(frozen=True)
class S3Server:
    """An S3-protocol endpoint and a user allowed to use every bucket on it."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = S3_REGION

    def minio_env(self, bucket: str) -> dict[str, str]:
        """The MINIO_* variables a user would set to use ``bucket`` on this server."""
        return {
            "MINIO_ENDPOINT": self.endpoint_url,
            "MINIO_ACCESS_KEY": self.access_key,
            "MINIO_SECRET_KEY": self.secret_key,
            "MINIO_BUCKET": bucket,
            "MINIO_REGION": self.region,
        }


def unique_bucket(prefix: str = "test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with code {process.returncode} on start")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"moto_server did not answer on {url} within {timeout:.0f} s")


def _create_s3_user(endpoint_url: str) -> tuple[str, str]:
    import boto3
    from botocore.config import Config

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint_url,
        region_name=S3_REGION,
        # Unchecked: these calls come before moto starts authenticating.
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
        config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}),
    )
    iam.create_user(UserName="trading-signals")
    iam.put_user_policy(
        UserName="trading-signals", PolicyName="s3", PolicyDocument=json.dumps(_S3_POLICY)
    )
    key = iam.create_access_key(UserName="trading-signals")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process group started with ``start_new_session=True``, then SIGKILL."""
    with suppress(ProcessLookupError):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout)
    # Children of the leader (run workers, gRPC servers) must not outlive the test either.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def running_moto_server(log_path: Path | None = None) -> Iterator[S3Server]:
    """moto's S3 server in its own process on a free port of 127.0.0.1, stopped afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    moto = Path(sys.executable).with_name("moto_server")
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(_MOTO_SETUP_ACTIONS))
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_until_up(url, process, MOTO_START_TIMEOUT_S)
        access_key, secret_key = _create_s3_user(url)
        yield S3Server(endpoint_url=url, access_key=access_key, secret_key=secret_key)
    finally:
        stop_process_group(process)
        if log_path:
            log.close()  # type: ignore[union-attr]


_shared_s3: S3Server | None = None


@pytest.fixture(scope="session")
def s3_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> S3Server:
    """One moto server for the whole session, shared by every folder that imports this fixture."""
    global _shared_s3
    if _shared_s3 is None:
        log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
        manager = running_moto_server(log_path)
        _shared_s3 = manager.__enter__()

        def _stop() -> None:
            global _shared_s3
            _shared_s3 = None
            manager.__exit__(None, None, None)

        request.config.add_cleanup(_stop)
    return _shared_s3
