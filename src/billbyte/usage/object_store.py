"""Where slice files live: a local directory or an S3-compatible bucket, behind one interface.

A slice file is written once under its key (``<msp>/<partner account>/<period>/<scope
digest>/<import id>.parquet``: an import id is never reused, so no key is ever overwritten)
and only becomes visible when the database makes it current. The store therefore needs no
transactions, renames or read-after-overwrite consistency: ``put`` an object, ``scan`` it,
``list`` and ``delete`` what no slice row refers to.

Reads go through polars' own object-store client (``scan_parquet`` with
``storage_options``); writes, listings and deletes through boto3. See docs/architecture.md.
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from billbyte.settings import Settings

# Local work that shares the root of a local store with the slices (uploads, import work
# folders, collector downloads): never slices.
_LOCAL_WORK_PREFIXES = ("_", "collect-")


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int


class UsageStore(ABC):
    """The slice store. Keys are relative, ``/``-separated."""

    url: str

    @abstractmethod
    def staging_path(self, key: str, work_dir: Path) -> Path:
        """Where the pipeline writes the file that ``put`` then stores under ``key``."""

    @abstractmethod
    def put(self, local_path: Path, key: str) -> None:
        """Store the finished local file under ``key`` (written once, never overwritten)."""

    @abstractmethod
    def scan(self, keys: Sequence[str]) -> list[pl.LazyFrame]:
        """One lazy frame per key, in order."""

    @abstractmethod
    def list(self) -> Iterator[StoredObject]:
        """Every slice file in the store."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...


class LocalStore(UsageStore):
    """A directory (``var/usage`` by default, or a shared file system): the layout as before
    the object store existed, files written in place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.resolve().as_uri()

    def staging_path(self, key: str, work_dir: Path) -> Path:
        return self.root / key

    def put(self, local_path: Path, key: str) -> None:
        target = self.root / key
        if local_path.resolve() != target.resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(local_path, target)

    def scan(self, keys: Sequence[str]) -> list[pl.LazyFrame]:
        return [pl.scan_parquet(self.root / key) for key in keys]

    def list(self) -> Iterator[StoredObject]:
        for path in self.root.rglob("*.parquet"):
            relative = path.relative_to(self.root)
            if relative.parts[0].startswith(_LOCAL_WORK_PREFIXES):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # deleted meanwhile (a superseded or unchanged piece)
                continue
            yield StoredObject(key=relative.as_posix(), size=stat.st_size)

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()


class S3Store(UsageStore):
    """A bucket (and prefix) of AWS S3 or of any S3-compatible store (MinIO, Ceph, R2).

    Credentials and region come from boto3's usual chain (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``, profiles, instance
    roles); polars is handed the same credentials at each scan, so refreshed role
    credentials reach the readers too.
    """

    def __init__(self, bucket: str, prefix: str, endpoint_url: str = "") -> None:
        # why: boto3 is slow to import and a local store never needs it
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.url = f"s3://{bucket}/{prefix}"
        session = boto3.session.Session()
        # Resolved once, here: a boto3 session is not thread-safe, its (refreshing)
        # credentials object is.
        self._credentials = session.get_credentials()
        self._client: Any = session.client(
            "s3",
            endpoint_url=endpoint_url or None,
            config=Config(
                # S3-compatible servers are addressed by path (no bucket DNS names).
                s3={"addressing_style": "path"} if endpoint_url else {},
                retries={"mode": "standard", "max_attempts": 5},
            ),
        )

    def staging_path(self, key: str, work_dir: Path) -> Path:
        return work_dir / "slices" / key

    def put(self, local_path: Path, key: str) -> None:
        self._client.upload_file(str(local_path), self.bucket, self.prefix + key)

    def scan(self, keys: Sequence[str]) -> list[pl.LazyFrame]:
        options = self.storage_options()
        return [
            pl.scan_parquet(f"s3://{self.bucket}/{self.prefix}{key}", storage_options=options)
            for key in keys
        ]

    def list(self) -> Iterator[StoredObject]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                if key.endswith(".parquet"):
                    yield StoredObject(key=key, size=item["Size"])

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError  # why: see __init__

        try:
            self._client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def probe(self) -> None:
        """Raise unless the bucket answers to these credentials (readiness). HEAD on the bucket,
        not on a key: a missing bucket and a missing key both answer a bare 404 to HEAD."""
        self._client.head_bucket(Bucket=self.bucket)

    def storage_options(self) -> dict[str, str]:
        """polars' (object_store's) options for this bucket, from boto3's credentials."""
        options = {"aws_region": self._client.meta.region_name or "us-east-1"}
        if self._credentials is not None:
            frozen = self._credentials.get_frozen_credentials()
            options["aws_access_key_id"] = frozen.access_key
            options["aws_secret_access_key"] = frozen.secret_key
            if frozen.token:
                options["aws_session_token"] = frozen.token
        if self.endpoint_url:
            options["aws_endpoint_url"] = self.endpoint_url
            options["aws_virtual_hosted_style_request"] = "false"
            if self.endpoint_url.startswith("http://"):
                options["aws_allow_http"] = "true"
        return options


def for_settings(settings: Settings) -> UsageStore:
    """The store ``BILLBYTE_USAGE_STORE_URL`` names (the settings validated it)."""
    bucket = settings.usage_store_s3
    if bucket is None:
        return LocalStore(settings.usage_store_dir)
    return _s3_store(*bucket, settings.s3_endpoint_url, _credentials_env())


def _credentials_env() -> tuple[str | None, ...]:
    # Part of the cache key: a process whose AWS_* variables change gets a new client.
    return tuple(
        os.environ.get(name)
        for name in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_PROFILE",
        )
    )


@lru_cache(maxsize=8)
def _s3_store(bucket: str, prefix: str, endpoint_url: str, _env: tuple[str | None, ...]) -> S3Store:
    # One client per bucket and process (boto3 clients are thread-safe and slow to build).
    return S3Store(bucket, prefix, endpoint_url)
