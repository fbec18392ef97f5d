"""LocalObjectStore: atomic writes, file:// URIs, safe keys, clear errors for missing objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from resources.object_store import (
    InvalidObjectKeyError,
    LocalObjectStore,
    ObjectNotFoundError,
    ObjectStore,
)


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(root=str(tmp_path / "objects"))


def test_put_get_exists_round_trip(store: LocalObjectStore, tmp_path: Path) -> None:
    uri = store.put("signal/TSLA/2025-01-02/run-abc.json", b'{"a": 1}', "application/json")
    expected = tmp_path / "objects" / "signal" / "TSLA" / "2025-01-02" / "run-abc.json"
    assert uri == f"file://{expected}"
    assert store.get(uri) == b'{"a": 1}' and store.exists(uri)
    assert expected.read_bytes() == b'{"a": 1}'


def test_put_replaces_atomically_and_leaves_no_temp_files(store: LocalObjectStore) -> None:
    uri = store.put("a/b.bin", b"one", "application/octet-stream")
    assert store.put("a/b.bin", b"two", "application/octet-stream") == uri
    assert store.get(uri) == b"two"
    folder = Path(store.root) / "a"
    assert [p.name for p in folder.iterdir()] == ["b.bin"]


def test_relative_root_becomes_an_absolute_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = LocalObjectStore()  # the default, "data/objects"
    uri = store.put("x/y.txt", b"y", "text/plain")
    assert uri == f"file://{tmp_path}/data/objects/x/y.txt"
    assert store.describe() == f"local folder {tmp_path}/data/objects"


@pytest.mark.parametrize(
    "key", ["", "../escape.txt", "a/../../escape.txt", "/etc/passwd", "a//b", "a/./b", "a\\b",
            "C:/x", "a/"],
)
def test_unsafe_keys_are_refused(store: LocalObjectStore, key: str) -> None:
    with pytest.raises(InvalidObjectKeyError, match="is not allowed"):
        store.put(key, b"x", "text/plain")
    assert not Path(store.root).exists() or not any(Path(store.root).rglob("*"))


def test_missing_object_names_the_uri(store: LocalObjectStore) -> None:
    uri = store.put("a/b.bin", b"x", "application/octet-stream")
    Path(uri.removeprefix("file://")).unlink()
    assert not store.exists(uri)
    with pytest.raises(ObjectNotFoundError) as excinfo:
        store.get(uri)
    assert isinstance(excinfo.value, FileNotFoundError)
    assert uri in str(excinfo.value)


def test_a_uri_from_another_store_is_refused(store: LocalObjectStore) -> None:
    with pytest.raises(ValueError, match="s3://bucket/a.json is not a local file URI"):
        store.get("s3://bucket/a.json")


def test_the_interface_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError, match="abstract"):
        ObjectStore()  # type: ignore[abstract]
