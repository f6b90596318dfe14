"""The read-only web pages under ``/ui/`` (server-rendered Jinja2, autoescaped, no JavaScript).

Auth is the API's: a key of role ``auditor`` or ``operator`` logs in once (``/ui/login``, the key
pasted into a form and sent in a POST body, never in a URL), then a session cookie carries a
random session id (``api.ui.sessions``). ``billing`` keys are refused with 403: they belong to
systems (the ERP driving commands), not to people reading history, and the issue asks for the
auditor role or higher; an operator is higher than an auditor (everything), billing is a
different kind of key, not a higher one. Auditors see no personal data (contractor and claim
evidence read "redacted", as in the API); operators see it; erased data reads "erased" to both.

Pages: ``/ui/`` (the dashboard, and search by contract id or customer number), ``/ui/contracts``
(the contract list with its filters; ``/ui/contracts.csv`` the same as CSV), ``/ui/contracts/{id}?as_of=DATE``
(timeline, invoices, SLA claims, deadlines and hash-chain status as of a business date;
``api.ui.history``), ``/ui/login`` and ``/ui/logout``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import FastAPI, Request
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response

from api.auth import AUDITOR, OPERATOR, Principal, hash_key
from api.context import ApiContext
from api.errors import route_label
from api.ui.export import csv_response
from api.ui.history import History, contractor_fields, contractor_text, fold, recorded_jst
from api.ui.i18n import LanguageMiddleware, language, state_label, t
from api.ui.sessions import COOKIE, SessionStore
from api.ui.timeline_svg import timeline_svg
from application.audit import contracts_of_customer, verify_chain
from application.desk import PAGE_SIZE, ContractQuery, contract_list, dashboard, matching_contracts
from application.undecodable import UndecodableEvent
from domain.calendar import jst_date
from domain.contract import Contract, State
from domain.deadlines import deadline_label
from domain.errors import DomainError, NotFound

log = logging.getLogger("api.ui")

UI_ROLES = (AUDITOR, OPERATOR)
PREFIX = "/ui"
HERE = Path(__file__).resolve().parent
CSS = (HERE / "static" / "ui.css").read_bytes()
_MAX_FORM = 4096

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _money(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def build_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["yen"] = _money
    env.filters["recorded"] = recorded_jst
    env.filters["state"] = state_label  # a state value as words, Japanese or English (api.ui.i18n)
    env.globals["t"] = t
    return env


class UiError(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


class Pages:
    """The page handlers over the API's context (services, read models, clock, key store)."""

    def __init__(self, ctx: ApiContext, sessions: SessionStore | None = None) -> None:
        self.ctx = ctx
        self.sessions = sessions or SessionStore(ctx.store)
        self.env = build_environment()

    # -- rendering --------------------------------------------------------------------------------
    def render(self, template: str, status: int = 200, who: Principal | None = None,
               alarm: dict[str, Any] | None = None, **values: Any) -> HTMLResponse:
        """``alarm``: a broken hash chain, shown as a banner across the top of the page."""
        html = self.env.get_template(template).render(who=who, mode=self.ctx.mode, alarm=alarm, lang=language.get(),
                                                      **values)
        return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})

    def error_page(self, status: int, title: str, detail: str, who: Principal | None = None) -> HTMLResponse:
        return self.render("error.html", status, who, title=title, detail=detail)

    # -- sessions ---------------------------------------------------------------------------------
    def principal(self, request: Request) -> Principal | None:
        """The logged-in principal (its key still valid and allowed here), or None."""
        session_id = request.cookies.get(COOKIE)
        session = self.sessions.get(session_id, datetime.now(UTC))
        if session is None:
            return None
        record = self.ctx.store.find_key(session.key_hash)
        if record is None:  # revoked since login
            self.sessions.drop(session_id)
            return None
        return Principal(record.name, record.role)

    def require(self, request: Request) -> Principal:
        who = self.principal(request)
        if who is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise _LoginRedirect(target)
        if who.role not in UI_ROLES:
            raise UiError(403, "Forbidden", f"role {who.role} may not use these pages (allowed: "
                          f"{', '.join(UI_ROLES)})")
        return who

    # -- login ------------------------------------------------------------------------------------
    def login_form(self, request: Request) -> Response:
        next_path = _safe_next(request.query_params.get("next"))
        return self.render("login.html", next_path=next_path, error=None)

    async def login(self, request: Request) -> Response:
        _check_origin(request)
        form = await _read_form(request)
        key = (form.get("key") or "").strip()
        next_path = _safe_next(form.get("next"))
        record = self.ctx.store.find_key(hash_key(key)) if key and len(key) <= 200 else None
        if record is None:
            log.info("web login refused: unknown or revoked key")
            return self.render("login.html", 401, next_path=next_path,
                               error="That key is not valid (unknown or revoked).")
        if record.role not in UI_ROLES:
            log.info("web login refused for %s: role %s", record.name, record.role)
            return self.render("login.html", 403, next_path=next_path,
                               error=f"Role {record.role} may not use these pages (allowed: {', '.join(UI_ROLES)}).")
        session_id = self.sessions.create(record.key_hash, datetime.now(UTC))
        log.info("web login of %s (%s)", record.name, record.role)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(COOKIE, session_id, path=PREFIX, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def logout(self, request: Request) -> Response:
        _check_origin(request)
        self.sessions.drop(request.cookies.get(COOKIE))
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    # -- search -----------------------------------------------------------------------------------
    def search(self, request: Request) -> Response:
        who = self.require(request)
        query = (request.query_params.get("q") or "").strip()
        results: list[Contract] = []
        if query:
            try:
                contract_id = uuid.UUID(query)
            except ValueError:
                results = self.find_by_customer(query)
            else:
                try:
                    self.ctx.app.get_contract(contract_id)
                except NotFound:
                    pass
                else:
                    return RedirectResponse(f"{PREFIX}/contracts/{contract_id}", status_code=303)
        chain = _chain_status(self.ctx, None)
        desk = None if query else dashboard(self.ctx.read_models, self.ctx.app.get_contract,
                                            self.ctx.app.recorder.max_notification_id() or 0,
                                            jst_date(self.ctx.now()))
        return self.render("search.html", who=who, alarm=_alarm(chain), chain=chain, query=query, results=results,
                           searched=bool(query), desk=desk, deadline_label=deadline_label,
                           contractor=lambda c: contractor_text(c, who.sees_personal_data))

    # -- the contract list ----------------------------------------------------------------------------
    def _query(self, request: Request) -> tuple[ContractQuery, int]:
        params = request.query_params
        state = (params.get("state") or "").strip()
        if state and state not in {s.value for s in State}:
            raise UiError(400, "Bad request", "state must be one of the contract states.")
        ref = (params.get("ref") or "").strip()
        if ref not in ("", "yes", "no"):
            raise UiError(400, "Bad request", "ref must be yes, no or empty.")
        try:
            page = int(params.get("page") or 1)
        except ValueError:
            raise UiError(400, "Bad request", "page must be a whole number.") from None
        query = ContractQuery(customer=(params.get("customer") or "").strip()[:64],
                              service=(params.get("service") or "").strip()[:64], state=state,
                              has_reference=None if not ref else ref == "yes")
        return query, page

    def contracts(self, request: Request) -> Response:
        who = self.require(request)
        query, page = self._query(request)
        listing = contract_list(self.ctx.read_models, self.ctx.app.get_contract, query, page, PAGE_SIZE)
        chain = _chain_status(self.ctx, None)
        ref = "" if query.has_reference is None else ("yes" if query.has_reference else "no")
        filters = {"customer": query.customer, "service": query.service, "state": query.state, "ref": ref}
        return self.render("contracts.html", who=who, alarm=_alarm(chain), listing=listing, q=query, ref=ref,
                           states=[s.value for s in State], filters=filters,
                           link=lambda **changes: "?" + urlencode({k: v for k, v in (filters | changes).items() if v}))

    def contracts_csv(self, request: Request) -> Response:
        """Every contract the list's filters select (not one page of them)."""
        self.require(request)
        query, _ = self._query(request)
        found, _ = matching_contracts(self.ctx.read_models, self.ctx.app.get_contract, query)
        rows = [(str(r.contract_id), r.customer_number, r.service, r.reference, r.state) for r in found]
        return csv_response("contracts.csv", ("contract_id", "customer_number", "service", "reference", "state"),
                            rows, SECURITY_HEADERS)

    def find_by_customer(self, customer_number: str) -> list[Contract]:
        """The customer's contracts: the deterministic id of each catalog service (reference ""),
        else a scan of the contracts' creation events (contracts opened with a reference)."""
        if len(customer_number) > 64:
            return []
        app = self.ctx.app
        found: list[Contract] = []
        for service in app.catalog.services():
            try:
                found.append(app.get_contract(Contract.create_id(customer_number, service)))
            except NotFound:
                continue
        if not found:
            found = [app.get_contract(cid) for cid in contracts_of_customer(app, customer_number)]
        return sorted(found, key=lambda c: (c.service, c.reference))

    # -- one contract -----------------------------------------------------------------------------
    def contract(self, request: Request, contract_id: str) -> Response:
        who = self.require(request)
        try:
            cid = uuid.UUID(contract_id)
        except ValueError:
            raise UiError(404, "Not found", "No such contract.") from None
        raw_as_of = (request.query_params.get("as_of") or "").strip()
        as_of: date | None = None
        if raw_as_of:
            try:
                as_of = date.fromisoformat(raw_as_of)
            except ValueError:
                raise UiError(400, "Bad request", "as_of must be a date written YYYY-MM-DD.") from None
        app = self.ctx.app
        events = app.contract_events(cid)  # NotFound -> 404 page
        today = jst_date(self.ctx.now())
        history = fold(cid, events, as_of, app.policy, who.sees_personal_data, today)
        chain = _chain_status(self.ctx, cid)
        current = app.get_contract(cid) if history.contract is None else history.contract
        hooks = getattr(self.ctx, "webhooks", None)  # Art. 9.5, 18, 28: when each notice was delivered
        notices = hooks.notices(app.get_contract(cid)) if hooks is not None else None
        return self.render(
            "contract.html", who=who, alarm=_alarm(chain), h=history, c=history.contract, head=current, today=today,
            as_of_given=as_of is not None, chain=chain, notices=notices,
            contractor=contractor_text(history.contract, who.sees_personal_data) if history.contract else "-",
            contractor_fields=contractor_fields(history.contract, who.sees_personal_data)
            if history.contract else [],
            future=as_of is not None and as_of > today, picture=timeline_svg(history, today))


class _LoginRedirect(Exception):
    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


def _chain_status(ctx: ApiContext, contract_id: uuid.UUID | None) -> dict[str, Any]:
    """The hash chain of one contract, or of the whole store (``None``: the dashboard)."""
    try:
        report = verify_chain(ctx.app, contract_id)
    except NotFound:
        return {"available": True, "ok": True, "checked": 0, "head": "", "broken": 0, "detail": None}
    except DomainError as exc:
        return {"available": False, "ok": False, "detail": exc.message, "broken": 0}
    first = report.first_broken
    where = "" if first is None or contract_id is not None else f"contract {first.aggregate_id} "
    return {"available": True, "ok": report.ok, "checked": report.checked, "head": report.head,
            "broken": len(report.broken),
            "detail": None if first is None else f"{where}version {first.version}: {first.reason}"}


def _alarm(chain: dict[str, Any]) -> dict[str, Any] | None:
    """The page-wide alarm of a broken chain (a chain that is not kept is no alarm: it says so)."""
    return chain if chain["available"] and not chain["ok"] else None


def _safe_next(value: str | None) -> str:
    """Only a path of these pages (no scheme, no host, no '//' or backslash tricks)."""
    if value and value.startswith(PREFIX + "/") and "//" not in value and "\\" not in value \
            and not value.startswith(PREFIX + "/login") and len(value) <= 300:
        return value
    return PREFIX + "/"


def _check_origin(request: Request) -> None:
    """A POST from another site is refused (the cookie is SameSite=Strict too).

    ``Origin: null`` is what a sandboxed frame or a ``data:`` page of another site sends: accepting
    it let any page log a victim's browser into the attacker's key (login CSRF, issue 14). It is
    also what a browser sends for our own form, because these pages say ``Referrer-Policy:
    no-referrer``; the browser's ``Sec-Fetch-Site`` (which no page can set) tells the two apart, so
    ``null`` passes only with ``Sec-Fetch-Site: same-origin``. A cross-site ``Sec-Fetch-Site`` is
    refused whatever the ``Origin``; a client sending neither header is a script, not a browser,
    and no CSRF vector."""
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    expected = f"{request.url.scheme}://{request.url.netloc}"
    if site is not None and site not in ("same-origin", "none"):
        raise UiError(403, "Forbidden", "cross-site form submissions are refused")
    if origin is not None and origin != expected and not (origin == "null" and site == "same-origin"):
        raise UiError(403, "Forbidden", "cross-site form submissions are refused")


async def _read_form(request: Request) -> dict[str, str]:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise UiError(415, "Unsupported media type", "send the login form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            raise UiError(413, "Payload too large", "the form is too large")
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=10)
    return {k: v[0] for k, v in parsed.items()}


def build_ui_app(ctx: ApiContext) -> FastAPI:
    """The pages as an ASGI app of their own (no OpenAPI entries; routes under ``/ui``) over the
    API's context. Nothing is read from the databases until a request arrives."""
    ui = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    ui.add_middleware(LanguageMiddleware)  # ?lang=ja|en, the ui_lang cookie, Accept-Language (api.ui.i18n)
    the_pages = Pages(ctx)
    ui.state.pages = the_pages

    def pages() -> Pages:
        return the_pages

    @ui.exception_handler(_LoginRedirect)
    async def _to_login(request: Request, exc: _LoginRedirect) -> Response:
        if request.method != "GET":
            return pages().error_page(401, "Authentication required", "Log in with an API key first.")
        return RedirectResponse(f"{PREFIX}/login?next={quote(exc.target, safe='/')}", status_code=303)

    @ui.exception_handler(UiError)
    async def _ui_error(request: Request, exc: UiError) -> Response:
        return pages().error_page(exc.status, exc.title, exc.detail, pages().principal(request))

    @ui.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return pages().error_page(404, "Not found", "No such contract.", pages().principal(request))

    @ui.exception_handler(UndecodableEvent)
    async def _undecodable(request: Request, exc: UndecodableEvent) -> Response:
        log.warning("stored event undecodable: aggregate %s version %d (%s)", exc.aggregate_id, exc.version,
                    exc.reason)
        return pages().error_page(500, "Damaged history", f"Event version {exc.version} of this contract is damaged "
                                  "in storage and cannot be decoded; `contracts audit verify` names it.",
                                  pages().principal(request))

    @ui.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        return pages().error_page(400, "Refused", exc.message, pages().principal(request))

    @ui.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        return pages().error_page(exc.status_code, title, title + ".")

    @ui.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        incident = uuid.uuid4().hex
        log.error("incident %s: unhandled error on %s %s", incident, request.method, route_label(request.scope),
                  exc_info=(type(exc), exc, exc.__traceback__))
        return pages().error_page(500, "Internal error", f"The page failed; incident {incident} in the service log.")

    @ui.get(PREFIX, include_in_schema=False)
    def root() -> Response:
        return RedirectResponse(PREFIX + "/", status_code=307)

    @ui.get(PREFIX + "/static/ui.css", include_in_schema=False)
    def css() -> Response:
        return Response(CSS, media_type="text/css", headers={"Cache-Control": "max-age=300",
                                                             "X-Content-Type-Options": "nosniff"})

    @ui.get(PREFIX + "/login", include_in_schema=False)
    def login_form(request: Request) -> Response:
        return pages().login_form(request)

    @ui.post(PREFIX + "/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        return await pages().login(request)

    @ui.post(PREFIX + "/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        return await pages().logout(request)

    @ui.get(PREFIX + "/", include_in_schema=False)
    def search(request: Request) -> Response:
        return pages().search(request)

    @ui.get(PREFIX + "/contracts", include_in_schema=False)
    def contracts(request: Request) -> Response:
        return pages().contracts(request)

    @ui.get(PREFIX + "/contracts.csv", include_in_schema=False)
    def contracts_csv(request: Request) -> Response:
        return pages().contracts_csv(request)

    @ui.get(PREFIX + "/contracts/{contract_id}", include_in_schema=False)
    def contract(request: Request, contract_id: str) -> Response:
        return pages().contract(request, contract_id)

    return ui


__all__ = ["History", "Pages", "build_ui_app", "UI_ROLES"]
