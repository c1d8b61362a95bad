"""Settings, read once from the environment (prefix ``BILLBYTE_``)."""

from __future__ import annotations

import logging
import re
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BILLBYTE_", extra="ignore")

    var_dir: Path = Field(default=Path("var"), description="Where local state lives.")
    database_url: str = Field(default="", description="SQLAlchemy URL; default SQLite in var_dir.")
    secret_key: str = Field(default="", description="Encrypts stored vendor credentials.")
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8000
    purge_hold_hours: int = Field(
        default=720, description="How long a customer stays suspended before purge is allowed."
    )
    collect_interval_minutes: int = Field(default=60, description="Default collector interval.")
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
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.var_dir / 'billbyte.sqlite3').resolve()}"

    @property
    def usage_store_dir(self) -> Path:
        path = self.var_dir / "usage"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def effective_secret_key(self) -> str:
        """The configured key, or one generated once into var_dir (with a warning)."""
        if self.secret_key:
            return self.secret_key
        key_file = self.var_dir / "secret_key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
        log.warning(
            "BILLBYTE_SECRET_KEY is not set: generated one into %s. "
            "Back it up: stored vendor credentials cannot be decrypted without it.",
            key_file,
        )
        return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
