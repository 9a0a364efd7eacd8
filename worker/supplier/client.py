"""Typed client for all eight supplier endpoints (CONTRACT.md, "Endpoints").

One long-lived ``httpx.Client`` is injected; every request is signed over the exact path
it sends. Failures map to the tree in ``worker.supplier.errors``; no httpx type leaks out.

Retries: reads (the two product GETs, PersonQrCodes, and Verify, which changes nothing) are
retried on ``SupplierUnavailable`` with exponential backoff and full jitter, within
``read_retries`` and a time budget: timeouts, connection errors and resets, 429 (waiting at least
its ``Retry-After``), 5xx, bodies that are not JSON or are cut short, ``Data: null`` where data is
expected, and ``IsSuccess: false`` answers the ``TransientRule`` marks as busy (``SupplierBusy``).
Any other ``IsSuccess: false`` is permanent (``SupplierRejected``). Each retry is logged at DEBUG
with its attempt number and counted in ``retries_sent``. Create, Pay, Refund and Cancel are sent
once whatever the answer: the supplier promises no idempotency, so a failure in flight raises
``SupplierOutcomeUnknown`` and the caller reconciles by ``OriginOrderId``.

Rate: every request first takes a token from the injected ``RateLimiter`` (the supplier's
budget is per distributor, so in production it is the Redis one shared by all workers).
Concurrency: price calendars are fetched by a bounded thread pool (``price_concurrency``),
which hides latency without exceeding the rate budget.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Self, TypeVar
from urllib.parse import urlencode
from urllib.request import getproxies, proxy_bypass

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from worker.supplier.contract import casefold_get
from worker.supplier.envelope import parse_product_page, summarize, unwrap
from worker.supplier.errors import (
    SupplierBadPayload,
    SupplierError,
    SupplierInconsistent,
    SupplierOutcomeUnknown,
    SupplierUnavailable,
)
from worker.supplier.fields import OutgoingModel, negatives_read_as_zero
from worker.supplier.payloads import (
    CreateOrderRequest,
    CreateOrderResult,
    PayOrderRequest,
    PayOrderResult,
    PersonQrCode,
    PriceCalendar,
    Product,
    ProductPage,
    RefundRequest,
    RefundResult,
    VerifyOrderRequest,
    wire_json,
)
from worker.supplier.port import PriceFetch, Stamp, Usage
from worker.supplier.ratelimit import NoLimit, RateLimiter
from worker.supplier.signing import auth_headers
from worker.supplier.transient import TransientRule
from worker.supplier.transport import StdlibTransport, origin_of

if TYPE_CHECKING:  # the adapter reads settings only at construction, never imports them
    from worker.settings import Settings

log = logging.getLogger(__name__)

PRODUCTS_PATH = "/product/getProductByDistributor"
PRICES_PATH = "/product/getProductPriceByDistributor"
VERIFY_PATH = "/order/Verify"
CREATE_PATH = "/order/Create"
PAY_PATH = "/order/Pay"
QR_CODES_PATH = "/order/PersonQrCodes"
REFUND_PATH = "/order/Refund"
CANCEL_PATH = "/order/CancelOrder"

M = TypeVar("M", bound=BaseModel)
# The longest Retry-After honoured: a longer one ends the attempts (the budget decides).
MAX_RETRY_AFTER_S = 30.0


def proxied(base_url: str) -> bool:
    """Whether the environment sends requests to ``base_url``'s host through a proxy."""
    url, proxies = httpx.URL(base_url), getproxies()
    return bool({url.scheme, "all"} & proxies.keys()) and not proxy_bypass(url.host)


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class _Template(NamedTuple):
    """One endpoint's request as httpx builds it, kept to send the next ones without httpx."""

    origin: tuple[str, str, int]  # scheme, host, port
    path: bytes
    headers: list[tuple[bytes, bytes]]
    length_at: int  # where Content-Length sits in ``headers``; -1 without a body


class SupplierClient:
    """The supplier's open API, typed; implements ``Supplier``. Thread-safe: share one per process."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        partner_id: int,
        sign_key: str,
        page_size: int = 100,
        read_retries: int = 4,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        price_concurrency: int = 4,
        retry_budget_s: float = 40.0,
        rate_limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.time,
        transient: TransientRule | None = None,
        sleep: Callable[[float], None] = time.sleep,
        direct: StdlibTransport | None = None,
    ) -> None:
        self._http = http
        # Requests go straight to this transport, with the client's base URL, headers and
        # timeouts, skipping what httpx.Client adds around a send (redirects, cookies, auth
        # flows, hooks) that a signed, stateless API never uses: see ``from_settings``.
        self._direct = direct
        self._timeouts = http.timeout.as_dict()
        self._partner_id = partner_id
        self._sign_key = sign_key
        self.page_size = page_size
        self._read_retries = read_retries
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._price_concurrency = price_concurrency
        self._retry_budget_s = retry_budget_s
        self._limiter: RateLimiter = rate_limiter or NoLimit()
        self._clock = clock
        self._transient = transient or TransientRule()
        self._sleep = sleep
        self._count_lock = threading.Lock()
        self._urls: dict[str, httpx.URL] = {}
        self._templates: dict[tuple[str, str, bool], _Template] = {}
        self.requests_sent = 0
        self.retries_sent = 0

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        rate_limiter: RateLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> SupplierClient:
        """Build the client and its long-lived connection pool from settings.

        With ``HTTP_TRANSPORT=stdlib`` (the default) requests are sent straight to the stdlib
        transport, unless the environment routes the supplier's host through a proxy
        (``HTTPS_PROXY`` and the like, minus ``NO_PROXY``): then httpx's client sends them, and
        its proxy mounts apply.
        """
        direct = None
        if transport is None and settings.http_transport == "stdlib":
            transport = StdlibTransport(max_idle=settings.price_concurrency * 2 + 4)
            if not proxied(settings.zzy_base_url):
                direct = transport
        http = httpx.Client(
            base_url=settings.zzy_base_url,
            timeout=httpx.Timeout(settings.http_timeout_s, connect=settings.http_connect_timeout_s),
            limits=httpx.Limits(max_connections=settings.price_concurrency * 2 + 4),
            transport=transport,
        )
        return cls(
            http,
            partner_id=settings.zzy_partner_id,
            sign_key=settings.zzy_sign_key.get_secret_value(),
            page_size=settings.page_size,
            read_retries=settings.read_retries,
            price_concurrency=settings.price_concurrency,
            rate_limiter=rate_limiter,
            transient=settings.transient_rule,
            direct=direct,
        )

    def usage(self) -> Usage:
        """Requests sent and retries made by this client so far."""
        with self._count_lock:
            return Usage(self.requests_sent, self.retries_sent)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- 1.1.1 products --------------------------------------------------------------------

    def iter_product_pages(
        self, page_size: int | None = None, *, stamp: Stamp = _wall_clock
    ) -> Iterator[ProductPage]:
        """Page through every authorized product; each page carries ``stamp()`` taken before it.

        Stops when ``TotalCount`` items were received or a page comes back empty. When the
        supplier caps ``pageSize`` below what was asked, later pages ask for the capped size,
        so page offsets stay aligned whichever size the supplier uses to compute them.
        Raises ``SupplierBadPayload`` if paging does not converge (a supplier that never ends).
        """
        size = page_size or self.page_size
        index = 1
        received = 0
        page_limit = 0
        while True:
            fetched_at = stamp()
            envelope = self._call_envelope(
                "GET", PRODUCTS_PATH, params={"pageIndex": index, "pageSize": size}
            )
            page = parse_product_page(envelope, index, size, fetched_at)
            yield page
            if page.size == 0:
                return
            received += page.size
            if received >= page.total_count:
                return
            if index == 1:
                if page.size < size:
                    size = page.size
                # Room for the catalog to double mid-pass; past that the supplier is broken.
                page_limit = 2 * math.ceil(page.total_count / size) + 10
            index += 1
            if index > page_limit:
                raise SupplierBadPayload(f"product paging did not end after {page_limit} pages")

    def list_products(self) -> list[Product]:
        """Every authorized product (invalid entries skipped; use the pages to see them)."""
        return [product for page in self.iter_product_pages() for product in page.products]

    def get_product(self, product_id: int) -> Product | None:
        """One product by id, or None when the supplier says it is not (or no longer) authorized.

        "Gone" is only an empty answer with ``TotalCount`` 0: a page holding other products (a
        supplier ignoring the filter) or a count without the item raises
        ``SupplierInconsistent``, because callers deauthorize on None.
        """
        envelope = self._call_envelope(
            "GET", PRODUCTS_PATH, params={"pageIndex": 1, "pageSize": 1, "productId": product_id}
        )
        page = parse_product_page(envelope, 1, 1)
        for product in page.products:
            if product.product_id == product_id:
                return product
        for invalid in page.invalid:
            if invalid.product_id == product_id:
                raise SupplierBadPayload(f"product {product_id} is invalid: {invalid.error}")
        if page.size == 0 and page.total_count == 0:
            return None
        raise SupplierInconsistent(
            f"asked for product {product_id}, got {page.size} other item(s) of {page.total_count}"
        )

    # --- 1.1.2 prices ----------------------------------------------------------------------

    def get_price_calendar(self, product_id: int, start: date, end: date) -> PriceCalendar:
        """Raw price rules and sessions of one product over ``[start, end]``."""
        data = self._call(
            "GET",
            PRICES_PATH,
            params={
                "StartTime": start.isoformat(),
                "EndTime": end.isoformat(),
                "productId": product_id,
            },
            require_data=True,  # Data null is an error, never an empty calendar
        )
        with negatives_read_as_zero() as negatives:
            calendar = self._model(PriceCalendar, data)
        if negatives:
            log.warning(
                "drift: prices of product %s: %d negative stock or count value(s) read as 0",
                product_id,
                len(negatives),
            )
        return calendar

    def fetch_price_calendars(
        self, product_ids: Iterable[int], start: date, end: date, *, stamp: Stamp = _wall_clock
    ) -> Iterator[PriceFetch]:
        """Fetch many calendars with bounded concurrency, in order; each says when it started
        (``stamp()``, which should be one clock for all workers: see ``worker.clock``)."""

        def one(product_id: int) -> PriceFetch:
            started = stamp()
            try:
                return PriceFetch(
                    product_id, self.get_price_calendar(product_id, start, end), started
                )
            except SupplierError as exc:
                return PriceFetch(product_id, exc, started)

        with ThreadPoolExecutor(self._price_concurrency, thread_name_prefix="prices") as pool:
            yield from pool.map(one, product_ids)

    # --- 1.1.3 - 1.1.8 orders --------------------------------------------------------------

    def verify_order(self, request: VerifyOrderRequest) -> None:
        """Pre-check an order; returns when acceptable, raises ``SupplierRejected`` with why not."""
        self._call("POST", VERIFY_PATH, body=request)

    def create_order(self, request: CreateOrderRequest) -> CreateOrderResult:
        """Create an order. Sent once: a failure in flight raises ``SupplierOutcomeUnknown``."""
        return self._model(
            CreateOrderResult, self._call("POST", CREATE_PATH, body=request, idempotent=False)
        )

    def pay_order(self, request: PayOrderRequest) -> PayOrderResult:
        """Pay an order. Sent once: a failure in flight raises ``SupplierOutcomeUnknown``."""
        return self._model(
            PayOrderResult, self._call("POST", PAY_PATH, body=request, idempotent=False)
        )

    def person_qr_codes(self, origin_order_id: str) -> list[PersonQrCode]:
        """Visitors' entry QR codes of an order, by the distributor's own order id."""
        data = self._call("GET", QR_CODES_PATH, params={"originOrderId": origin_order_id})
        if data is None:
            return []
        if not isinstance(data, list):
            raise SupplierBadPayload("PersonQrCodes Data is not a list")
        return [self._model(PersonQrCode, item) for item in data]

    def refund_order(self, request: RefundRequest) -> RefundResult:
        """Apply for a refund (``refund_id`` must be unique). Sent once."""
        return self._model(
            RefundResult, self._call("POST", REFUND_PATH, body=request, idempotent=False)
        )

    def cancel_order(self, order_id: int) -> None:
        """Cancel an unpaid order. Sent once."""
        self._call("POST", CANCEL_PATH, params={"orderId": order_id}, idempotent=False)

    # --- transport -------------------------------------------------------------------------

    def _model(self, model: type[M], data: Any) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise SupplierBadPayload(
                f"{model.__name__} did not validate: {summarize(exc)}"
            ) from None

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: OutgoingModel | None = None,
        idempotent: bool = True,
        require_data: bool = False,
    ) -> Any:
        envelope = self._call_envelope(
            method,
            path,
            params=params,
            body=body,
            idempotent=idempotent,
            require_data=require_data,
        )
        return casefold_get(envelope, "Data")

    def _call_envelope(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: OutgoingModel | None = None,
        idempotent: bool = True,
        require_data: bool = True,
    ) -> dict[str, Any]:
        """The whole success envelope; reads retried (module docstring), writes sent once."""
        if not idempotent:
            return self._send(method, path, params, body, idempotent=False, require_data=False)
        backoff = wait_random_exponential(
            multiplier=self._backoff_initial_s, max=self._backoff_max_s
        )

        def wait(state: RetryCallState) -> float:
            # Honour Retry-After (429, 503) when it asks for longer than the backoff would.
            delay = float(backoff(state))
            error = state.outcome.exception() if state.outcome is not None else None
            if isinstance(error, SupplierUnavailable) and error.retry_after_s is not None:
                delay = max(delay, min(error.retry_after_s, MAX_RETRY_AFTER_S))
            return delay

        def before_sleep(state: RetryCallState) -> None:
            with self._count_lock:
                self.retries_sent += 1
            error = state.outcome.exception() if state.outcome is not None else None
            log.debug(
                "supplier %s %s: attempt %s of %s failed (%s); retrying in %.2f s",
                method,
                path,
                state.attempt_number,
                self._read_retries + 1,
                error,
                state.upcoming_sleep,
            )

        retrying = Retrying(
            retry=retry_if_exception_type(SupplierUnavailable),
            # Attempts, and no attempt starting after the budget: the budget plus one request's
            # timeouts stays below a Celery task's soft limit (60 s).
            stop=stop_after_attempt(self._read_retries + 1)
            | stop_before_delay(self._retry_budget_s),
            wait=wait,
            before_sleep=before_sleep,
            sleep=self._sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._send(
                    method, path, params, body, idempotent=True, require_data=require_data
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def _url(self, path: str) -> httpx.URL:
        """``path`` joined to the client's base URL, once per path: a URL parse is a good part
        of what building a request costs, and the paths are the eight endpoints."""
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = self._http.build_request("GET", path).url
        return url

    def _template(self, method: str, path: str, has_body: bool) -> _Template:
        """What httpx would send for this endpoint but the query, signature and body: origin,
        path and header lines in httpx's order (its Content-Length, if any, at ``length_at``)."""
        key = (method, path, has_body)
        template = self._templates.get(key)
        if template is None:
            request = self._http.build_request(method, self._url(path), content=b"-" * has_body)
            raw = list(request.headers.raw)
            names = [name.lower() for name, _ in raw]
            length_at = names.index(b"content-length") if has_body else -1
            url = request.url
            template = self._templates[key] = _Template(
                origin_of(url), url.raw_path, raw, length_at
            )
        return template

    def _send_request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        content: bytes | None,
        auth: dict[str, str],
    ) -> httpx.Response:
        """Send one signed request, through httpx's client or straight to the transport (the
        same bytes either way; see ``__init__``)."""
        if self._direct is None:
            request = self._http.build_request(
                method, self._url(path), params=params, content=content
            )
            request.headers.update(auth)
            if content is not None:
                request.headers["Content-Type"] = "application/json"
            return self._http.send(request)
        template = self._template(method, path, content is not None)
        target = template.path
        if params:
            target += b"?" + urlencode(params).encode("ascii")  # as httpx encodes them
        headers = template.headers.copy()
        if content is not None:
            headers[template.length_at] = (b"Content-Length", b"%d" % len(content))
        headers += [(name.encode(), value.encode()) for name, value in auth.items()]
        if content is not None:
            headers.append((b"Content-Type", b"application/json"))
        response = self._direct.exchange(
            method, template.origin, target, headers, content or b"", self._timeouts
        )
        try:
            response.read()
        finally:
            response.close()
        return response

    def _send(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: OutgoingModel | None,
        *,
        idempotent: bool,
        require_data: bool,
    ) -> dict[str, Any]:
        content = None
        if body is not None:
            wire = {"PartnerId": self._partner_id, **body.to_wire()}
            content = wire_json(wire)
        signed_path = self._url(path).path
        # Wait for the rate budget first: a timestamp taken before a long wait could go stale.
        self._limiter.acquire()
        auth = auth_headers(
            self._partner_id, self._sign_key, signed_path, int(self._clock() * 1000)
        )
        with self._count_lock:
            self.requests_sent += 1
        started = time.perf_counter()
        try:
            response = self._send_request(method, path, params, content, auth)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Never left this machine: safe to report as plainly unavailable, even for writes.
            raise SupplierUnavailable(
                f"{method} {path}: cannot connect ({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            reason = f"{method} {path}: {type(exc).__name__} in flight"
            if not idempotent:
                raise SupplierOutcomeUnknown(reason) from None
            raise SupplierUnavailable(reason) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.debug(
            "supplier %s %s -> %s in %.0f ms", method, signed_path, response.status_code, elapsed_ms
        )
        envelope = unwrap(method, path, response, idempotent=idempotent, transient=self._transient)
        if require_data and casefold_get(envelope, "Data") is None:
            # A success without the data asked for: an overloaded back end, not "nothing".
            raise SupplierUnavailable(f"{method} {path}: success answer with Data null")
        return envelope
