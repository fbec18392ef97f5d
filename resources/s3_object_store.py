"""Artifact objects in MinIO or S3, configured through dagster-aws's ``S3Resource``.

URIs are ``s3://bucket/key``; the bucket is created on first write; every failure of the endpoint
or the credentials becomes an ``ObjectStoreError`` that names the endpoint, the bucket and the fix
(never the secret).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

import boto3
import dagster as dg
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    SSLError,
)
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from resources.object_store import (
    ObjectNotFoundError,
    ObjectStore,
    ObjectStoreError,
    check_object_key,
)
from sql.engine import mask_url

DEFAULT_BUCKET = "trading-artifacts"
DEFAULT_REGION = "us-east-1"

T = TypeVar("T")

# S3 answers HEAD requests without a body, so a rejected HEAD only carries its status code.
_AUTH_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken",
     "ExpiredToken", "403", "Forbidden"}
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})
_CREDENTIALS_FIX = (
    "check MINIO_ACCESS_KEY and MINIO_SECRET_KEY (the MinIO user's access key and secret) and "
    "that this user may read and write the bucket"
)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3ObjectStore(ObjectStore):
    """Objects in a MinIO / S3 bucket; URIs are ``s3://bucket/prefix/key``.

    ``s3`` carries the endpoint, region and credentials users already configure for dagster-aws;
    this store adds connect/read timeouts and path-style addressing (which MinIO needs), which
    ``S3Resource.get_client()`` does not set, so the client is built here from the same fields.
    """

    s3: S3Resource
    bucket: str = DEFAULT_BUCKET
    prefix: str = ""
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0

    _client: Any = PrivateAttr(default=None)
    _bucket_ready: bool = PrivateAttr(default=False)

    def __repr_args__(self) -> Any:
        # repr() lands in logs and validation errors; the nested S3Resource holds the secret.
        for name, value in super().__repr_args__():
            yield name, (self.describe() if name == "s3" else value)

    def _endpoint(self) -> str:
        if self.s3.endpoint_url:
            # An endpoint may be written with credentials in it; never shown.
            return mask_url(self.s3.endpoint_url)
        return f"AWS S3 ({self.s3.region_name or 'default region'})"

    def describe(self) -> str:
        location = f"s3://{self.bucket}" + (f"/{self.prefix.strip('/')}" if self.prefix else "")
        return f"{location} at {self._endpoint()}"

    def _where(self) -> str:
        return f"bucket {self.bucket} at {self._endpoint()}"

    def client(self) -> Any:
        """The boto3 S3 client, created once: bounded timeouts and retries on every call."""
        if self._client is None:
            s3 = self.s3
            config = Config(
                connect_timeout=self.connect_timeout_seconds,
                read_timeout=self.read_timeout_seconds,
                # Standard mode retries connection errors, throttling and 5xx with backoff.
                retries={"max_attempts": s3.max_attempts, "mode": "standard"},
                # MinIO serves buckets as paths; virtual hosts (bucket.minio:9000) do not resolve.
                s3={"addressing_style": "path" if s3.endpoint_url else "auto"},
                signature_version="s3v4",
            )
            session = boto3.session.Session(profile_name=s3.profile_name)
            self._client = session.client(
                "s3",
                region_name=s3.region_name or DEFAULT_REGION,
                endpoint_url=s3.endpoint_url,
                use_ssl=s3.use_ssl,
                verify=s3.verify,
                aws_access_key_id=s3.aws_access_key_id,
                aws_secret_access_key=s3.aws_secret_access_key,
                aws_session_token=s3.aws_session_token,
                config=config,
            )
        return self._client

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        """Run one S3 request; endpoint and credential failures become ObjectStoreError."""
        try:
            return fn()
        except (BotoCoreError, ClientError) as exc:
            raise self._translate(action, exc) from exc

    def _translate(self, action: str, exc: BotoCoreError | ClientError) -> ObjectStoreError:
        """What went wrong and how to fix it; the cause stays chained for the traceback."""
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return ObjectStoreError(
                f"cannot {action}: no S3 credentials for {self._where()}; set MINIO_ACCESS_KEY "
                "and MINIO_SECRET_KEY (or unset MINIO_ENDPOINT to use the local object folder)"
            )
        if isinstance(exc, SSLError):
            return ObjectStoreError(
                f"cannot {action}: the TLS connection to {self._endpoint()} failed "
                f"({type(exc).__name__}); if the endpoint serves plain HTTP set "
                "MINIO_SECURE=false (or use an http:// MINIO_ENDPOINT)"
            )
        if isinstance(exc, ReadTimeoutError):
            return ObjectStoreError(
                f"cannot {action}: the S3 endpoint {self._endpoint()} accepted the connection but "
                f"did not answer within {self.read_timeout_seconds:g} s ({self.s3.max_attempts} "
                "attempts); check that MINIO_ENDPOINT is the S3 API port (MinIO: 9000, not the "
                "console's 9001) and that the server is healthy"
            )
        if isinstance(exc, ConnectionError):
            return ObjectStoreError(
                f"cannot {action}: the S3 endpoint {self._endpoint()} did not answer after "
                f"{self.s3.max_attempts} attempts ({type(exc).__name__}); check that MinIO is "
                "running and that MINIO_ENDPOINT (host:port or URL) and MINIO_SECURE are right"
            )
        if isinstance(exc, ClientError):
            code = _error_code(exc)
            if code in _AUTH_CODES:
                return ObjectStoreError(
                    f"cannot {action}: {self._where()} rejected the credentials ({code}); "
                    f"{_CREDENTIALS_FIX}"
                )
            if code == "AuthorizationHeaderMalformed":
                return ObjectStoreError(
                    f"cannot {action}: {self._where()} expects another region ({code}); set "
                    "MINIO_REGION to the bucket's region"
                )
        return ObjectStoreError(f"cannot {action} in {self._where()}: {exc}")

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet (once per store instance)."""
        if self._bucket_ready:
            return
        try:
            self.client().head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _error_code(exc) not in _NOT_FOUND_CODES:
                raise self._translate("check the bucket", exc) from exc
            self._call("create the bucket", self._create_bucket)
        except BotoCoreError as exc:
            raise self._translate("check the bucket", exc) from exc
        self._bucket_ready = True

    def _create_bucket(self) -> None:
        region = self.s3.region_name or DEFAULT_REGION
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region != DEFAULT_REGION:
            # S3 refuses a LocationConstraint of us-east-1 and requires one everywhere else.
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client().create_bucket(**kwargs)
        except ClientError as exc:
            # Another process (a parallel run, the compose init container) made it meanwhile.
            if _error_code(exc) != "BucketAlreadyOwnedByYou":
                raise

    def _key(self, key: str) -> str:
        check_object_key(key)
        prefix = self.prefix.strip("/")
        return f"{prefix}/{key}" if prefix else key

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def list_objects(self, prefix: str) -> dict[str, int]:
        full_prefix = self._key(prefix.rstrip("/")) + "/" if prefix else self.prefix.strip("/")
        found: dict[str, int] = {}

        def page_through() -> None:
            paginator = self.client().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                for item in page.get("Contents", []):
                    found[f"s3://{self.bucket}/{item['Key']}"] = int(item["Size"])

        self._call(f"list s3://{self.bucket}/{full_prefix}", page_through)
        return found

    def ping(self) -> None:
        # A fresh check every time (not the cached one): the sensor asks whether it is back.
        self._bucket_ready = False
        self.ensure_bucket()

    def put(self, key: str, data: bytes, content_type: str) -> str:
        full_key = self._key(key)
        self.ensure_bucket()
        # ContentType makes charts open as images in the MinIO console and from presigned URLs.
        self._call(
            f"write s3://{self.bucket}/{full_key}",
            lambda: self.client().put_object(
                Bucket=self.bucket, Key=full_key, Body=data, ContentType=content_type
            ),
        )
        return f"s3://{self.bucket}/{full_key}"

    def _location(self, uri: str) -> tuple[str, str]:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
            raise ValueError(
                f"{uri} is not an s3://bucket/key URI, so {self.describe()} cannot read it: the "
                "artifact was written to another object store (file:// URIs are the local "
                "object folder: unset MINIO_ENDPOINT to read them)"
            )
        return parsed.netloc, parsed.path.lstrip("/")

    def get(self, uri: str) -> bytes:
        bucket, key = self._location(uri)
        try:
            return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                raise ObjectNotFoundError(
                    f"object {uri} does not exist (store: {self.describe()}): it was deleted or "
                    "MINIO_ENDPOINT points at another server; re-materialize the asset for that "
                    "partition to recreate it"
                ) from exc
            raise self._translate(f"read {uri}", exc) from exc
        except BotoCoreError as exc:
            raise self._translate(f"read {uri}", exc) from exc

    def exists(self, uri: str) -> bool:
        bucket, key = self._location(uri)
        try:
            self.client().head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                return False
            raise self._translate(f"check {uri}", exc) from exc
        except BotoCoreError as exc:
            raise self._translate(f"check {uri}", exc) from exc
        return True

    def content_type(self, uri: str) -> str:
        """The stored object's Content-Type (what a browser will open it as)."""
        bucket, key = self._location(uri)
        head = self._call(
            f"check {uri}", lambda: self.client().head_object(Bucket=bucket, Key=key)
        )
        return str(head["ContentType"])


def s3_object_store(
    *,
    endpoint_url: str | None,
    bucket: str = DEFAULT_BUCKET,
    access_key: str | dg.EnvVar | None = None,
    secret_key: str | dg.EnvVar | None = None,
    region: str | dg.EnvVar = DEFAULT_REGION,
    max_attempts: int = 3,
    connect_timeout_seconds: float = 5.0,
    read_timeout_seconds: float = 30.0,
) -> S3ObjectStore:
    """An S3ObjectStore for a MinIO/S3 endpoint URL (``http://host:9000``; None means AWS)."""
    use_ssl = endpoint_url is None or endpoint_url.startswith("https://")
    return S3ObjectStore(
        s3=S3Resource(
            endpoint_url=endpoint_url,
            use_ssl=use_ssl,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            max_attempts=max_attempts,
        ),
        bucket=bucket,
        connect_timeout_seconds=connect_timeout_seconds,
        read_timeout_seconds=read_timeout_seconds,
    )
