"""Settings, read once from the environment (prefix ``BILLBYTE_``)."""

from __future__ import annotations

import logging
import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

# Local state (the SQLite database, the usage store, generated keys) holds every tenant's
# billing data and credentials: no other local user may read it.
PRIVATE_DIR_MODE = 0o700
# Synchronous `limits` storages that support the moving window (and need no extra driver
# beyond redis-py).
LOG_FORMATS = ("text", "json")  # billbyte.kit.logs formats each
RATE_LIMIT_STORAGE_SCHEMES = (
    "memory",
    "redis",
    "rediss",
    "redis+unix",
    "redis+sentinel",
    "redis+cluster",
)
# S3 bucket names (AWS's rules, which MinIO, Ceph and R2 follow): 3-63 lowercase letters,
# digits, dots and hyphens, starting and ending with a letter or digit.
S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BILLBYTE_", extra="ignore")

    var_dir: Path = Field(default=Path("var"), description="Where local state lives.")
    database_url: str = Field(default="", description="SQLAlchemy URL; default SQLite in var_dir.")
    # The PostgreSQL connection pool of each process (docs/operations.md#connection-pooling);
    # SQLite ignores them.
    db_pool_size: int = Field(default=10, ge=1, description="Connections kept open per process.")
    db_max_overflow: int = Field(
        default=20, ge=0, description="Connections opened beyond the pool size under load."
    )
    db_pool_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for a free connection before failing."
    )
    db_pool_pre_ping: bool = Field(
        default=True, description="Test each connection before use (survives server restarts)."
    )
    db_pool_recycle: int = Field(
        default=1800,
        ge=-1,
        description="Seconds after which a connection is replaced (below the idle timeout of "
        "a firewall or PgBouncer); -1: never.",
    )
    db_prepared_statements: bool = Field(
        default=True,
        description="Let psycopg prepare repeated statements; false behind PgBouncer in "
        "transaction pooling mode (before PgBouncer 1.21's max_prepared_statements).",
    )
    secret_key: str = Field(
        default="",
        description="Encrypts stored secrets. Several keys separated by commas: the first "
        "encrypts, all decrypt (key rotation, see `billbyte secrets rotate`).",
    )
    log_level: str = "INFO"
    log_format: str = Field(
        default="text",
        description="text (one human line a record) or json (one JSON object a line, with "
        "request_id, job_id and job_kind): docs/operations.md#logs.",
    )
    metrics_token: str = Field(
        default="",
        description="Serves GET /metrics (Prometheus) to `Authorization: Bearer <token>`; "
        "unset, /metrics answers 404.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    sandbox_aws_port: int = Field(default=8811, description="serve --sandbox: moto (AWS) port.")
    sandbox_partner_center_port: int = Field(
        default=8812, description="serve --sandbox: Partner Center simulator port."
    )
    sandbox_google_channel_port: int = Field(
        default=8813, description="serve --sandbox: Cloud Channel simulator port."
    )
    public_url: str = Field(
        default="",
        description="The address people reach this server at (e.g. https://billing.example.com):"
        " used in the portal's invitation and password-reset links and, when https, to mark"
        " session cookies Secure. Default: http://HOST:PORT.",
    )
    purge_hold_hours: int = Field(
        default=720, description="How long a customer stays suspended before purge is allowed."
    )
    collect_interval_minutes: int = Field(default=60, description="Default collector interval.")
    idempotency_lease_seconds: int = Field(
        default=60,
        ge=5,
        description="How long a request holding an Idempotency-Key may go without renewing "
        "its claim (it renews every third of this) before a retry may take the key over.",
    )
    # Outbound requests to URLs an MSP controls (webhooks, partner account endpoints):
    # billbyte.kit.outbound. BILLBYTE_WEBHOOK_ALLOW_PRIVATE is the older name, still read.
    outbound_allow_private: bool = Field(
        default=False,
        validation_alias=AliasChoices(
            "BILLBYTE_OUTBOUND_ALLOW_PRIVATE",
            "BILLBYTE_WEBHOOK_ALLOW_PRIVATE",
            "outbound_allow_private",
            "webhook_allow_private",
        ),
        description="Allow MSP-set URLs on loopback/private networks (single-MSP installs).",
    )
    # Rate limits, in the `limits` notation ("600/minute", several separated by ";");
    # an empty string switches that limit off.
    rate_limit_per_ip: str = Field(
        default="1200/minute", description="Requests per client IP address."
    )
    rate_limit_per_key: str = Field(default="600/minute", description="Requests per API key.")
    rate_limit_failed_auth_per_ip: str = Field(
        default="20/minute",
        description="Failed authentications per client IP; once reached, every request "
        "from that IP is refused with 429 (even with a correct key) until the window passes.",
    )
    rate_limit_storage_url: str = Field(
        default="memory://",
        description="Where rate-limit counters live: memory:// (per process) or "
        "redis://host:port/db so that several API processes share them.",
    )

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in LOG_FORMATS:
            raise ValueError(f"{value!r} is not a log format: use text or json")
        return value

    @field_validator("rate_limit_per_ip", "rate_limit_per_key", "rate_limit_failed_auth_per_ip")
    @classmethod
    def _limit_notation(cls, value: str) -> str:
        if value.strip():
            try:
                parse_many(value)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a rate limit: write e.g. '600/minute' or "
                    "'20/minute;500/day', or leave it empty for no limit"
                ) from None
        return value

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _limit_storage(cls, value: str) -> str:
        scheme = value.partition("://")[0]
        if scheme not in RATE_LIMIT_STORAGE_SCHEMES:
            raise ValueError(
                f"rate-limit storage {value!r} is not supported: use memory:// or "
                "redis://host:port/db (also rediss://, redis+sentinel://, redis+cluster://)"
            )
        return value

    # Usage uploads (docs/security.md, "Uploads and decompression"): enforced while streaming.
    usage_upload_max_bytes: int = Field(
        default=2 * 1024**3, gt=0, description="Largest usage upload (one request, as sent)."
    )
    usage_decompressed_max_bytes: int = Field(
        default=20 * 1024**3, gt=0, description="Largest usage file once decompressed/decoded."
    )
    usage_compression_ratio_max: int = Field(
        default=200, gt=0, description="Largest decompressed:compressed ratio of a usage file."
    )
    usage_json_max_bytes: int = Field(
        default=64 * 1024**2, gt=0, description="Largest JSON usage document (parsed in memory)."
    )
    usage_record_max_bytes: int = Field(
        default=1024**2, gt=0, description="Longest CSV line or JSON string in a usage file."
    )
    usage_store_url: str = Field(
        default="",
        description="Where usage slices (Parquet) are stored: file://PATH (a local or shared "
        "directory; default: VAR_DIR/usage) or s3://BUCKET/PREFIX (S3 or any S3-compatible "
        "store; credentials from the standard AWS_* variables).",
    )
    s3_endpoint_url: str = Field(
        default="",
        description="The S3 endpoint for an S3-compatible store (MinIO, Ceph, R2), e.g. "
        "http://minio:9000. Default: AWS S3 of AWS_REGION / AWS_DEFAULT_REGION.",
    )
    broker_url: str = Field(
        default="",
        description="redis://host:6379/0 or amqp://user:pass@host:5672/vhost: jobs are "
        "published to Dramatiq after their transaction commits and `billbyte worker` consumes "
        "them. Empty: the database poller alone runs jobs (the embedded default).",
    )
    broker_queue: str = Field(
        default="billbyte-jobs", min_length=1, description="The Dramatiq queue jobs go to."
    )
    broker_worker_threads: int = Field(
        default=4, ge=1, description="Dramatiq consumer threads per `billbyte worker`."
    )
    broker_rederive_seconds: float = Field(
        default=30.0,
        gt=0,
        description="With a broker: how often the database poller looks for jobs due for "
        "longer than this without being claimed (their message was lost) and runs them.",
    )
    jobs_per_msp_max: int = Field(
        default=4,
        ge=1,
        description="At most this many jobs of one MSP run at once, over every worker: the "
        "others' jobs find workers free even while one MSP has thousands pending. Claims "
        "serve the MSP with the fewest running jobs first, then the one served least recently.",
    )
    readiness_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="GET /readyz answers from its last probe for this long, and concurrent "
        "calls wait for one probe: a flood of this unauthenticated, unthrottled endpoint costs "
        "one database, broker and object-store probe per period. 0: every call probes.",
    )

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str) -> str:
        if value and value.partition("://")[0] not in BROKER_SCHEMES:
            raise ValueError(
                f"broker {value.split('@')[-1]!r} is not supported: use redis://host:6379/0 "
                "(or rediss://) or amqp://user:pass@host:5672/ (or amqps://), or leave it empty"
            )
        return value

    usage_import_stale_minutes: int = Field(
        default=15, gt=0, description="An import without heartbeat for this long is failed."
    )
    outbound_allow_http: bool = Field(
        default=False, description="Allow plain http for MSP-set URLs (otherwise https only)."
    )
    outbound_allowed_ports: str = Field(
        default="443,8443", description="Ports MSP-set URLs may use (comma-separated, or *)."
    )
    allow_custom_vendor_endpoints: bool = Field(
        default=False,
        description="Let non-sandbox partner accounts use endpoints other than the vendor's.",
    )

    @field_validator("usage_store_url")
    @classmethod
    def _usage_store(cls, value: str) -> str:
        value = value.strip()
        scheme = value.partition("://")[0].lower() if "://" in value else ""
        if value and scheme not in ("file", "s3"):
            raise ValueError(
                f"usage store {value!r} is not supported: use file:///path/to/dir or "
                "s3://bucket/prefix"
            )
        if scheme == "file" and not value[len("file://") :]:
            raise ValueError("a file:// usage store needs a directory, e.g. file:///srv/usage")
        if scheme == "s3":
            bucket = urlsplit(value).netloc
            if not S3_BUCKET.fullmatch(bucket) or ".." in bucket:
                raise ValueError(
                    f"usage store {value!r} names no valid bucket: write s3://bucket/prefix "
                    "(3-63 lowercase letters, digits, dots and hyphens)"
                )
        return value

    @field_validator("s3_endpoint_url")
    @classmethod
    def _s3_endpoint(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ValueError(f"{value!r} is not an http(s):// endpoint, e.g. http://minio:9000")
        return value

    @field_validator("outbound_allowed_ports")
    @classmethod
    def _ports(cls, value: str) -> str:
        if not re.fullmatch(r"\s*(\*|\d+(\s*[,\s]\s*\d+)*)\s*", value):
            raise ValueError("a comma-separated list of ports, or *")
        return value

    @property
    def webhook_allow_private(self) -> bool:
        """The older name of ``outbound_allow_private``."""
        return self.outbound_allow_private

    @webhook_allow_private.setter
    def webhook_allow_private(self, value: bool) -> None:
        self.outbound_allow_private = value

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.private_var_dir()
        return f"sqlite:///{(self.var_dir / 'billbyte.sqlite3').resolve()}"

    @property
    def usage_store_s3(self) -> tuple[str, str] | None:
        """``(bucket, prefix)`` when the usage store is a bucket; the prefix is empty or ends
        with ``/``."""
        if not self.usage_store_url.lower().startswith("s3://"):
            return None
        parts = urlsplit(self.usage_store_url)
        prefix = parts.path.strip("/")
        return parts.netloc, f"{prefix}/" if prefix else ""

    @property
    def usage_store_path(self) -> Path:
        """The local usage directory, without creating it (readiness checks it): the slice
        store itself when it is on disk (file://), and in every case the root of the local
        temporary work (uploads waiting to be imported, import work folders, collector
        downloads)."""
        if self.usage_store_url.lower().startswith("file://"):
            return Path(self.usage_store_url[len("file://") :])
        return self.var_dir / "usage"

    @property
    def usage_store_dir(self) -> Path:
        """``usage_store_path``, created (private) if missing."""
        path = self.usage_store_path
        if self.usage_store_url.lower().startswith("file://"):
            path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
            return path
        self.private_var_dir()
        path.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
        return path

    def private_var_dir(self) -> Path:
        """var_dir, created owner-only if missing (an existing one is left as the operator
        made it)."""
        self.var_dir.parent.mkdir(parents=True, exist_ok=True)
        self.var_dir.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
        return self.var_dir

    def effective_secret_key(self) -> str:
        """The configured key, or one generated once into var_dir (with a warning)."""
        if self.secret_key:
            return self.secret_key
        key_file = self.var_dir / "secret_key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.private_var_dir()
        key = secrets.token_urlsafe(32)
        # Created 0600 from the start, not chmod-ed after being briefly world-readable.
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key + "\n")
        log.warning(
            "BILLBYTE_SECRET_KEY is not set: generated one into %s. "
            "Back it up: stored vendor credentials cannot be decrypted without it.",
            key_file,
        )
        return key


def describe_invalid(error: ValidationError) -> str:
    """A settings error as one line per variable, named as the operator sets it."""
    return "; ".join(
        f"BILLBYTE_{'_'.join(str(p) for p in item['loc']).upper()}: "
        f"{item['msg'].removeprefix('Value error, ')}"
        for item in error.errors()
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
