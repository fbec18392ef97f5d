"""Where artifact payloads live: the object-store interface and its local-folder implementation.

The interface is deliberately small (put bytes under a key, get/exists by URI) so an S3 / MinIO
implementation maps onto boto3's put_object / get_object / head_object one to one.
"""

from __future__ import annotations

import os
import tempfile
from abc import abstractmethod
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import dagster as dg


class ObjectNotFoundError(FileNotFoundError):
    """An object URI that the store has no object for."""


class ObjectStoreError(RuntimeError):
    """The object store cannot be used (endpoint down, credentials rejected, bucket unusable)."""


class InvalidObjectKeyError(ValueError):
    """An object key that could escape the store's root or is not a relative path."""


def check_object_key(key: str) -> str:
    """``key`` if it is a safe relative key (``a/b/c.ext``); raises InvalidObjectKeyError."""
    problem = None
    if not key:
        problem = "it is empty"
    elif key.startswith("/") or "\\" in key or (len(key) > 1 and key[1] == ":"):
        problem = "it must be a relative path with '/' separators"
    elif any(part in ("", ".", "..") for part in key.split("/")):
        problem = "it must not contain '..', '.' or empty path segments"
    if problem:
        raise InvalidObjectKeyError(
            f"object key {key!r} is not allowed: {problem} (keys look like "
            "'asset/SYMBOL/2025-01-02/run-hash.ext')"
        )
    return key


class ObjectStore(dg.ConfigurableResource):
    """Stores payloads as immutable objects addressed by URI."""

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store ``data`` under ``key`` (see ``check_object_key``); return the object's URI."""

    @abstractmethod
    def get(self, uri: str) -> bytes:
        """The object's bytes; raises ObjectNotFoundError (a FileNotFoundError) if absent."""

    @abstractmethod
    def exists(self, uri: str) -> bool: ...

    @abstractmethod
    def uri_for(self, key: str) -> str:
        """The URI ``put(key, ...)`` returns, known before (or without) writing."""

    @abstractmethod
    def list_objects(self, prefix: str) -> dict[str, int]:
        """URI -> size in bytes of every object whose key starts with ``prefix``."""

    @abstractmethod
    def ping(self) -> None:
        """Raise ObjectStoreError unless the store can be written to right now."""

    @abstractmethod
    def describe(self) -> str:
        """Where objects go, for people: e.g. 'local folder /srv/data/objects'."""


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``; URIs are ``file:///absolute/path``."""

    root: str = "data/objects"

    def _root(self) -> Path:
        return Path(self.root).resolve()

    def describe(self) -> str:
        return f"local folder {self._root()}"

    def uri_for(self, key: str) -> str:
        return (self._root() / check_object_key(key)).as_uri()

    def list_objects(self, prefix: str) -> dict[str, int]:
        root = self._root()
        base = root / prefix.rstrip("/") if prefix else root
        if not base.is_dir():
            return {}
        return {
            path.as_uri(): path.stat().st_size
            for path in base.rglob("*")
            # Dot-files are half-written temporaries (see put), never objects.
            if path.is_file() and not path.name.startswith(".")
        }

    def ping(self) -> None:
        root = self._root()
        try:
            root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=root):
                pass
        except OSError as exc:
            raise ObjectStoreError(
                f"cannot write to {self.describe()} ({type(exc).__name__}: {exc}): check that "
                "the data folder exists, is mounted and writable"
            ) from exc

    def put(self, key: str, data: bytes, content_type: str) -> str:
        path = self._root() / check_object_key(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target then rename, so a reader never sees a half-written object.
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return path.as_uri()

    def _path(self, uri: str) -> Path:
        parsed = urlparse(uri)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            raise ValueError(
                f"{uri} is not a local file URI, so {self.describe()} cannot read it: the "
                "artifact was written to another object store; configure that store (e.g. set "
                "MINIO_ENDPOINT for s3:// URIs)"
            )
        return Path(url2pathname(parsed.path))

    def get(self, uri: str) -> bytes:
        path = self._path(uri)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(
                f"object {uri} does not exist (store: {self.describe()}): it was deleted or the "
                "data folder moved; re-materialize the asset for that partition to recreate it"
            ) from exc

    def exists(self, uri: str) -> bool:
        return self._path(uri).is_file()
