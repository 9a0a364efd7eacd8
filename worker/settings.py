"""The typed settings, read from the environment at the entry points only.

``Settings`` is everything; ``ReadApiSettings`` is the part the read-only catalog API needs,
so that process is never handed the supplier's sign key.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from worker.supplier.transient import TransientRule

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


class ReadApiSettings(BaseSettings):
    """Storage, freshness window and token: all the read API reads."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    database_url: str = "sqlite:///var/catalog.db"
    price_window_days: int = Field(default=60, ge=1, le=366)
    catalog_api_token: SecretStr | None = None
    catalog_api_anonymous: bool = False
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    # The supplier's request budget and the share of it background price refreshes spend
    # (also read here: status and metrics show the budget in use).
    supplier_rate_limit: float = Field(
        default=20.0, gt=0, description="requests per second, all workers"
    )
    price_refresh_share: float = Field(default=0.5, gt=0, le=1)
    # Set by the gunicorn configuration for prometheus_client's multiprocess mode.
    prometheus_multiproc_dir: str | None = None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError("must be one of " + ", ".join(LOG_LEVELS))
        return value.upper()

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except ArgumentError:
            raise ValueError(
                "is not a database URL (e.g. sqlite:///var/catalog.db or "
                "postgresql+psycopg://user@host/db)"
            ) from None
        return value

    @field_validator("catalog_api_token", mode="before")
    @classmethod
    def _blank_token_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value


class Settings(ReadApiSettings):
    """Everything configurable, with the environment variable named by each field (upper case)."""

    # The supplier.
    zzy_base_url: str
    zzy_partner_id: int = Field(gt=0)
    zzy_sign_key: SecretStr
    zzy_allow_http: bool = False
    http_timeout_s: float = Field(default=10.0, gt=0)
    http_connect_timeout_s: float = Field(default=5.0, gt=0)
    # How requests to the supplier move (worker.supplier.transport): "stdlib" (HTTP/1.1 over the
    # standard library's sockets, kept-alive connections, a fraction of the CPU per request) or
    # "httpcore" (httpx's default).
    http_transport: Literal["stdlib", "httpcore"] = "stdlib"
    supplier_burst: int = Field(default=10, ge=1)
    price_concurrency: int = Field(default=4, ge=1, le=64)
    page_size: int = Field(default=100, ge=1, le=1000)
    read_retries: int = Field(default=4, ge=0, le=10)
    # IsSuccess false answers to a read that are retried (worker.supplier.transient): codes as "500-",
    # "429,500-599"; message fragments comma-separated, matched case-insensitively.
    supplier_transient_codes: str = "500-"
    supplier_transient_messages: str = "繁忙,稍后,超时,busy,timeout"

    # Orders: send /order/Verify after the local checks, before Create.
    order_verify: bool = True
    # The beat task that reconciles orders whose Create or Pay answer was lost.
    order_reconcile_interval_s: float = Field(default=60.0, gt=0)

    # Broker (the database is in ReadApiSettings).
    redis_url: str | None = None
    broker_db_url: str = "sqlite:///var/broker.db"

    # Sync behaviour (the price window is in ReadApiSettings).
    price_max_age: timedelta = timedelta(hours=6)
    price_batch_size: int = Field(default=50, ge=1)
    product_pass_interval_s: float = Field(default=600.0, gt=0)
    price_refresh_interval_s: float = Field(default=60.0, gt=0)
    deauthorize_max_share: float = Field(default=0.2, ge=0, le=1)
    # The product-pass lock's expiry. Its holder renews it every third of this, so it bounds
    # only how long a killed holder blocks the next pass, not how long a pass may run.
    pass_lock_ttl_s: float = Field(default=60.0, gt=0)
    # How the background price refresh spreads its budget (worker.sync.refresh_plan), the
    # shortest interval it gives any product, and how often it re-estimates and replans.
    price_refresh_policy: Literal["adaptive", "uniform"] = "adaptive"
    price_refresh_min_interval_s: float = Field(default=60.0, gt=0)
    price_replan_interval_s: float = Field(default=300.0, gt=0)

    # Callbacks.
    callback_url: str | None = None  # the notify URL the supplier posts to (doctor probes it)
    callback_path: str = "/callbacks/zzy"
    callback_public_path: str | None = None
    callback_tolerance_s: int = Field(default=300, ge=1)
    callback_max_body: int = Field(default=65536, ge=1024)
    # A body not all there within this is refused (408): a slow client holds a thread no longer.
    callback_body_timeout_s: float = Field(default=5.0, gt=0, le=60)
    inbox_max_attempts: int = Field(default=5, ge=1, le=20)
    product_notice_coalesce_s: float = Field(default=30.0, ge=0)

    @field_validator("price_refresh_policy", mode="before")
    @classmethod
    def _lower_policy(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("zzy_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("supplier_transient_codes")
    @classmethod
    def _code_ranges(cls, value: str) -> str:
        from worker.supplier.transient import parse_codes

        parse_codes(value)
        return value

    @field_validator("zzy_sign_key")
    @classmethod
    def _non_empty_key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value

    @field_validator("callback_path", "callback_public_path")
    @classmethod
    def _absolute_path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must start with /")
        return value

    @field_validator("price_max_age", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return value

    @field_validator("redis_url", "callback_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("broker_db_url")
    @classmethod
    def _broker_db_url(cls, value: str) -> str:
        return cls._database_url(value)

    @field_validator("callback_url")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _https_unless_loopback(self) -> Settings:
        """The sign key must not cross a network in clear text: https, or a loopback host."""
        parts = urlsplit(self.zzy_base_url)
        if parts.scheme == "https" or self.zzy_allow_http or _is_loopback(parts.hostname):
            return self
        raise ValueError(
            "ZZY_BASE_URL must be https:// (http:// only for a loopback host, "
            "or with ZZY_ALLOW_HTTP=true)"
        )

    @property
    def callback_signing_path(self) -> str:
        """The path the supplier signs callbacks over (the public notify URL's path)."""
        return self.callback_public_path or self.callback_path

    @property
    def transient_rule(self) -> TransientRule:
        """The busy-answer rule of the supplier client."""
        from worker.supplier.transient import TransientRule

        return TransientRule.from_text(
            self.supplier_transient_codes, self.supplier_transient_messages
        )

    @property
    def uses_redis(self) -> bool:
        return self.redis_url is not None


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


S = TypeVar("S", bound=BaseSettings)


def load_settings(kind: type[S] = Settings, **overrides: Any) -> S:  # type: ignore[assignment]
    """Read settings from the environment; raise ``ConfigError`` naming each bad variable."""
    try:
        return kind(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            if not error["loc"]:  # a rule across fields names its variables itself
                problems.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            name = str(error["loc"][0]).upper()
            message = "is required" if error["type"] == "missing" else error["msg"]
            problems.append(f"{name}: {str(message).removeprefix('Value error, ')}")
        hint = ""
        if any(error["type"] == "missing" for error in exc.errors()):
            hint = " (set them in the environment; honcho also reads a .env file)"
        raise ConfigError("invalid configuration: " + "; ".join(problems) + hint) from None
