"""``catalog-sync doctor``: the effective configuration (secrets masked), then one check per part,
each ``ok`` or ``FAIL`` with what was seen; exit 0 only when every check passes."""

from __future__ import annotations

import email.utils
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import click
import httpx
from pydantic import SecretStr

from worker.logs import configure_logging
from worker.settings import ConfigError, Settings, load_settings
from worker.startup import StartupError, check_database, check_redis, masked_url

# A supplier clock further off than this makes signed timestamps look stale to one side.
MAX_CLOCK_SKEW_S = 60.0
MIN_TOKEN_LENGTH = 16
URL_FIELDS = {"database_url", "redis_url", "broker_db_url"}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def effective_config(settings: Settings) -> list[tuple[str, str]]:
    """Every setting as its variable name and a printable value: secrets and passwords masked."""
    rows = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown = "*** (set)" if value.get_secret_value() else "(empty)"
        elif value is None:
            shown = "(unset)"
        elif name in URL_FIELDS:
            shown = masked_url(str(value))
        else:
            shown = str(value)
        rows.append((name.upper(), shown))
    return rows


def _run(name: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except (StartupError, ProbeFailed) as exc:
        return Check(name, False, str(exc))


class ProbeFailed(Exception):
    """A check's failure, with what was seen and what to do."""


def check_supplier(settings: Settings, http: httpx.Client) -> str:
    """One signed product-list request (page 1, size 1): round trip, answer, clock skew."""
    from worker.supplier.client import PRODUCTS_PATH
    from worker.supplier.signing import auth_headers

    request = http.build_request(
        "GET", settings.zzy_base_url + PRODUCTS_PATH, params={"pageIndex": 1, "pageSize": 1}
    )
    sent = time.time()
    request.headers.update(
        auth_headers(
            settings.zzy_partner_id,
            settings.zzy_sign_key.get_secret_value(),
            request.url.path,
            int(sent * 1000),
        )
    )
    started = time.perf_counter()
    try:
        response = http.send(request)
    except httpx.HTTPError as exc:
        raise ProbeFailed(
            f"ZZY_BASE_URL: no answer from {settings.zzy_base_url} ({type(exc).__name__}): "
            "check the URL and the network"
        ) from None
    rtt_ms = (time.perf_counter() - started) * 1000
    skew = _clock_skew(response.headers.get("Date"), sent, time.time())
    seen = f"HTTP {response.status_code} in {rtt_ms:.0f} ms"
    skew_text = "no Date header" if skew is None else f"clock skew {skew:+.1f} s"
    try:
        envelope = json.loads(response.content)
    except ValueError:
        raise ProbeFailed(f"{seen}, not JSON: is ZZY_BASE_URL the supplier's API?") from None
    if not isinstance(envelope, dict) or envelope.get("IsSuccess") is not True:
        fields = envelope if isinstance(envelope, dict) else {}
        raise ProbeFailed(
            f"{seen}: rejected, Code={fields.get('Code')} Message={fields.get('Message')!r}: "
            "check ZZY_PARTNER_ID and ZZY_SIGN_KEY"
        )
    if skew is not None and abs(skew) > MAX_CLOCK_SKEW_S:
        raise ProbeFailed(f"{seen}, {skew_text}: synchronise this machine's clock (NTP)")
    total = (envelope.get("Data") or {}).get("TotalCount") if isinstance(envelope, dict) else None
    return f"{seen}, {total} products authorized, {skew_text}"


def _clock_skew(date_header: str | None, sent: float, received: float) -> float | None:
    """The supplier's clock minus ours, from its ``Date`` header (1 s resolution)."""
    if not date_header:
        return None
    try:
        theirs = email.utils.parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError):
        return None
    return theirs - (sent + received) / 2


def check_callback(settings: Settings, http: httpx.Client) -> str:
    """A signed probe notice to CALLBACK_URL: our receiver verifies it, stores it (as ``done``,
    never applied) in this configuration's database and answers 1000."""
    from callbacks.intake import PROBE_SERVICE_NAME
    from worker.supplier.signing import auth_headers

    path = settings.callback_signing_path
    if settings.callback_url is None:
        return f"CALLBACK_URL not set: not probed (the receiver serves {settings.callback_path})"
    if urlsplit(settings.callback_url).path != path:
        raise ProbeFailed(
            f"CALLBACK_URL path {urlsplit(settings.callback_url).path} is not the signed path "
            f"{path}: set CALLBACK_PUBLIC_PATH (or CALLBACK_PATH) to match"
        )
    headers = auth_headers(
        settings.zzy_partner_id,
        settings.zzy_sign_key.get_secret_value(),
        path,
        int(time.time() * 1000),
    )
    probe = {
        "OrderNotifyHeader": {
            "PartnerId": settings.zzy_partner_id,
            "NotifyServiceName": PROBE_SERVICE_NAME,
        },
        "OrderNotifyBody": "{}",
    }
    before = _probes_stored(settings)
    try:
        response = http.post(
            settings.callback_url,
            content=json.dumps(probe).encode(),
            headers={**headers, "Content-Type": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise ProbeFailed(
            f"CALLBACK_URL: no answer from {settings.callback_url} ({type(exc).__name__}): "
            "is the web process running and reachable there?"
        ) from None
    try:
        code = response.json().get("Code")
    except (ValueError, AttributeError):
        code = None
    if response.status_code == 401:
        raise ProbeFailed(
            f"{settings.callback_url} refused our signature ({code}): the receiver's "
            "ZZY_SIGN_KEY or CALLBACK_PUBLIC_PATH differs from this one"
        )
    if response.status_code != 200 or code != 1000:
        raise ProbeFailed(
            f"{settings.callback_url} answered HTTP {response.status_code} (Code {code}): "
            "not this project's callback receiver"
        )
    if _probes_stored(settings) <= before:
        raise ProbeFailed(
            f"{settings.callback_url} acknowledged the probe but it is not in this DATABASE_URL: "
            "the receiver stores into another database"
        )
    return f"{settings.callback_url} verified and stored a signed probe"


def _probes_stored(settings: Settings) -> int:
    """How many doctor probes the inbox of this configuration's database holds."""
    from sqlalchemy import func, select

    from callbacks.intake import PROBE_SERVICE_NAME
    from models.db import make_engine
    from models.inbox import InboxMessage

    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            query = select(func.count()).where(InboxMessage.service_name == PROBE_SERVICE_NAME)
            return int(connection.execute(query).scalar_one())
    except Exception as exc:
        raise ProbeFailed(f"cannot read the inbox ({type(exc).__name__})") from None
    finally:
        engine.dispose()


def check_api_token(settings: Settings) -> str:
    token = settings.catalog_api_token
    if token is not None:
        if len(token.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ProbeFailed(
                f"CATALOG_API_TOKEN is shorter than {MIN_TOKEN_LENGTH} characters: use a long "
                "random one (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return "set; the read API requires it"
    if settings.catalog_api_anonymous:
        return "not set; CATALOG_API_ANONYMOUS=true serves the read API to anyone who reaches it"
    raise ProbeFailed(
        "CATALOG_API_TOKEN not set: the read API will refuse to start (set it, or "
        "CATALOG_API_ANONYMOUS=true)"
    )


def run_checks(settings: Settings, http: httpx.Client) -> list[Check]:
    def database() -> str:
        check_database(settings.database_url, migrate=False)
        from models.db import head_revisions, make_engine

        engine = make_engine(settings.database_url)
        try:
            heads = ", ".join(sorted(head_revisions(engine)))
        finally:
            engine.dispose()
        return f"{masked_url(settings.database_url)} reachable, at head {heads}"

    def redis_check() -> str:
        if settings.redis_url is None:
            return "REDIS_URL not set: embedded mode (file locks and rate budget, one machine)"
        check_redis(settings.redis_url)
        return f"{masked_url(settings.redis_url)} answers PING"

    def broker() -> str:
        if settings.redis_url is not None:
            check_redis(settings.redis_url)
            return f"Redis at {masked_url(settings.redis_url)}"
        check_database(settings.broker_db_url, migrate=False, variable="BROKER_DB_URL")
        return f"{masked_url(settings.broker_db_url)} (kombu SQLAlchemy transport) reachable"

    return [
        _run("database", database),
        _run("redis", redis_check),
        _run("broker", broker),
        _run("supplier", lambda: check_supplier(settings, http)),
        _run("callback", lambda: check_callback(settings, http)),
        _run("api token", lambda: check_api_token(settings)),
    ]


@click.command()
@click.option("--timeout", default=10.0, show_default=True, help="Seconds per network check.")
def doctor(timeout: float) -> None:
    """Print the effective configuration (secrets masked) and check every part it names."""
    try:
        settings: Settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging("ERROR", [settings.zzy_sign_key.get_secret_value()], settings.log_format)
    click.echo("configuration:")
    for name, value in effective_config(settings):
        click.echo(f"  {name} = {value}")
    click.echo("checks:")
    with httpx.Client(timeout=timeout) as http:
        checks = run_checks(settings, http)
    for check in checks:
        click.echo(f"  {'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    failed = [c.name for c in checks if not c.ok]
    click.echo("all checks passed" if not failed else f"failed: {', '.join(failed)}")
    sys.exit(1 if failed else 0)
