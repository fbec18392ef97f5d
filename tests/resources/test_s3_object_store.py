"""S3ObjectStore against a real S3-protocol server (moto, started by the test session)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import closing

import pytest

from resources.object_store import ObjectNotFoundError, ObjectStoreError
from resources.s3_object_store import S3ObjectStore, s3_object_store
from tests.servers import S3Server, free_port, unique_bucket
from trading_assets.environment import object_store_from_environment

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _store(server: S3Server, bucket: str | None = None, **overrides: object) -> S3ObjectStore:
    settings: dict[str, object] = {
        "endpoint_url": server.endpoint_url,
        "bucket": bucket or unique_bucket(),
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "max_attempts": 2,
        "connect_timeout_seconds": 1.0,
        "read_timeout_seconds": 2.0,
    }
    settings.update(overrides)
    return s3_object_store(**settings)  # type: ignore[arg-type]


def test_the_bucket_is_created_on_first_write_and_objects_round_trip(s3_server: S3Server) -> None:
    store = _store(s3_server)
    buckets = {b["Name"] for b in store.client().list_buckets()["Buckets"]}
    assert store.bucket not in buckets

    uri = store.put("trading_signal/TSLA/2025-06-02/run-abc.json", b'{"a": 1}', "application/json")
    assert uri == f"s3://{store.bucket}/trading_signal/TSLA/2025-06-02/run-abc.json"
    assert store.get(uri) == b'{"a": 1}' and store.exists(uri)
    assert not store.exists(f"s3://{store.bucket}/nothing/here.json")

    # A second store (another process) finds the bucket there and keeps the objects.
    again = _store(s3_server, bucket=store.bucket)
    again.ensure_bucket()
    assert again.get(uri) == b'{"a": 1}'


def test_content_types_make_charts_open_as_images(s3_server: S3Server) -> None:
    store = _store(s3_server)
    cases = {
        "daily_chart/TSLA/2025-06-02/r.png": (PNG, "image/png"),
        "trading_signal/TSLA/2025-06-02/r.json": (b"{}", "application/json"),
        "market_data/TSLA/2025-06-02/r.parquet": (b"PAR1", "application/vnd.apache.parquet"),
    }
    for key, (data, content_type) in cases.items():
        uri = store.put(key, data, content_type)
        assert store.content_type(uri) == content_type
        head = store.client().head_object(Bucket=store.bucket, Key=key)
        assert head["ContentLength"] == len(data)


def test_prefix_keeps_objects_under_a_folder(s3_server: S3Server) -> None:
    store = _store(s3_server).model_copy(update={"prefix": "prod/"})
    uri = store.put("a/b.json", b"1", "application/json")
    assert uri == f"s3://{store.bucket}/prod/a/b.json" and store.get(uri) == b"1"


def test_a_missing_object_names_the_uri_and_the_fix(s3_server: S3Server) -> None:
    store = _store(s3_server)
    store.ensure_bucket()
    with pytest.raises(ObjectNotFoundError, match="re-materialize the asset"):
        store.get(f"s3://{store.bucket}/gone.json")


def test_a_file_uri_is_refused_with_the_reason(s3_server: S3Server) -> None:
    with pytest.raises(ValueError, match="not an s3://bucket/key URI"):
        _store(s3_server).get("file:///tmp/x.json")


@pytest.mark.parametrize(
    "which", ["access_key", "secret_key"], ids=["unknown-access-key", "wrong-secret"]
)
def test_wrong_credentials_say_which_variables_to_check(s3_server: S3Server, which: str) -> None:
    secret = "not-the-secret-at-all"
    wrong = {"access_key": "unknown-access-key-id", "secret_key": secret}[which]
    store = _store(s3_server, **{which: wrong})
    for action in (
        lambda: store.put("a/b.json", b"1", "application/json"),
        lambda: store.get(f"s3://{store.bucket}/a/b.json"),
    ):
        with pytest.raises(ObjectStoreError) as excinfo:
            action()
        message = str(excinfo.value)
        assert "rejected the credentials" in message
        assert "MINIO_ACCESS_KEY and MINIO_SECRET_KEY" in message
        assert store.bucket in message and s3_server.endpoint_url in message
        assert secret not in message and s3_server.secret_key not in message
    assert secret not in repr(store)


def test_an_endpoint_that_is_down_fails_fast_and_says_what_to_check() -> None:
    port = free_port()  # nothing listens there
    store = _store(S3Server(f"http://127.0.0.1:{port}", "key", "secret"))
    started = time.monotonic()
    with pytest.raises(ObjectStoreError) as excinfo:
        store.put("a/b.json", b"1", "application/json")
    assert time.monotonic() - started < 10
    message = str(excinfo.value)
    assert f"http://127.0.0.1:{port} did not answer after 2 attempts" in message
    assert "MINIO_ENDPOINT" in message and "MinIO is running" in message


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A port that accepts connections and never answers (a hung server)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_hung_endpoint_times_out_instead_of_hanging(silent_endpoint: str) -> None:
    store = _store(
        S3Server(silent_endpoint, "key", "secret"), max_attempts=1, read_timeout_seconds=0.5
    )
    started = time.monotonic()
    with pytest.raises(ObjectStoreError, match=r"did not answer within 0.5 s"):
        store.ensure_bucket()
    assert time.monotonic() - started < 5


def test_minio_variables_select_the_bucket(s3_server: S3Server) -> None:
    bucket = unique_bucket()
    store = object_store_from_environment(s3_server.minio_env(bucket), data=None)  # type: ignore[arg-type]
    assert isinstance(store, S3ObjectStore)
    assert store.describe() == f"s3://{bucket} at {s3_server.endpoint_url}"
    uri = store.put("x/y.png", PNG, "image/png")
    assert store.content_type(uri) == "image/png"
