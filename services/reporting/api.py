"""The reporting HTTP API: summaries as JSON, the committee report as HTML and PDF, browser
sign-in.

Every case-data route depends on `case_data_or_session` (a bearer token or a browser session
whose scope holds the code; 401/403 before the path is validated); the index and
`GET /municipalities` list only what the principal may read. Each decision is audited
(services.common.auth).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from schemas.municipalities import is_known, municipality_name, region_of
from schemas.periods import Period, as_of, local_date
from schemas.reporting import CourseState
from schemas.summary import CourseStatus, SummaryData, SummaryStatus
from services.common.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    Access,
    Principal,
    Unauthorized,
    audit_slot,
    case_data_or_session,
    responses,
)
from services.common.auth.sessions import CSRF_MAX_AGE_S
from services.common.auth.tokens import digest
from services.common.paths import MunicipalityCode, PeriodName
from services.reporting.domain.course import completion
from services.reporting.domain.reviews import phase_means, rereview_changes
from services.reporting.replica import KINDS, Replica
from services.reporting.report import IndexEntry, ReportInput, render_index, render_login, render_report
from services.reporting.report import pdf as report_pdf
from services.reporting.report import safe_next as safe_next_url
from services.reporting.stored import StoredSummary

UNKNOWN = "Ukendt adgangsnøgle."
EXPIRED_FORM = "Formularen var udløbet. Prøv igen."
TOO_MANY = "For mange mislykkede forsøg fra denne adresse. Prøv igen om lidt."
COURSES = KINDS["reporting.course_changed"]


class MunicipalityEntry(BaseModel):
    """A municipality the principal may read, with its latest period's summary."""

    code: str = Field(pattern=r"^[0-9]{3}$", examples=["480"])
    name: str = Field(description="Official name; `Kommune <code>` for a code not in the list.",
                      examples=["Nordfyns Kommune"])
    region: str | None = Field(description="Its region; null for a code not in the list.",
                               examples=["Region Syddanmark"])
    known: bool = Field(description="Whether the code is in Danmarks Statistik's list of the 98 "
                                    "municipalities (an unknown code is valid all the same).")
    latest_period: str = Field(pattern=r"^[0-9]{4}H[12]$", examples=["2022H2"],
                               description="The latest half-year with a summary.")
    status: SummaryStatus = Field(description="That summary's status.")
    revision: int = Field(ge=0, description="That summary's revision.")
    as_of: datetime = Field(description="That summary's `as_of`.")


class MunicipalityList(BaseModel):
    """The municipalities the principal may read that have summaries, by code."""

    municipalities: list[MunicipalityEntry]


def latest_by_municipality(stored: list[StoredSummary], principal: Principal) -> list[MunicipalityEntry]:
    """Per municipality the principal may read, its latest period's stored summary, by code."""
    latest: dict[str, StoredSummary] = {}
    for summary in stored:
        code = summary.municipality_code
        if principal.may_read(code) and (code not in latest or summary.period > latest[code].period):
            latest[code] = summary
    return [MunicipalityEntry(code=code, name=municipality_name(code), region=region_of(code),
                              known=is_known(code), latest_period=s.period, status=s.status,
                              revision=s.revision, as_of=s.as_of)
            for code, s in sorted(latest.items())]


async def completed_on(replica: Replica, code: str, summary: SummaryData) -> date | None:
    """The local date on which the course the summary reports completed, read from the
    course's replicated state as of the summary's `as_of` (the figures carry only the month);
    None while the summary says the course has not completed."""
    if summary.course.status is not CourseStatus.COMPLETED:
        return None
    doc = await replica.db[COURSES.collection].find_one({"municipality_code": code}, {"state": 1})
    state: CourseState | None = COURSES.held_of(doc) if doc is not None else None
    period = Period.parse(summary.period)
    at = completion(state, as_of(period, summary.as_of), period)
    return None if at is None else local_date(at)


def router(replica: Replica, access: Access) -> APIRouter:
    guard, browser = access.guard, access.browser
    assert browser is not None, "the reporting service signs browsers in"
    api = APIRouter()
    data = APIRouter(dependencies=[Depends(case_data_or_session)], responses=responses.CASE_DATA)

    @data.get("/municipalities/{code}/summaries")
    async def list_summaries(code: MunicipalityCode) -> dict[str, Any]:
        """Periods with their latest status and revision."""
        stored = await replica.summaries(code)
        return {"municipality_code": code, "periods": [
            {"period": p, "status": s.status, "revision": s.revision, "as_of": s.as_of}
            for p, s in sorted(stored.items())]}

    @data.get("/municipalities/{code}/summaries/{period}")
    async def get_summary(code: MunicipalityCode, period: PeriodName) -> dict[str, Any]:
        """The latest data published for the period, with the municipality code."""
        stored = (await replica.summaries(code)).get(period)
        if stored is None:
            raise HTTPException(404, "no summary for that period")
        return {"municipality_code": code, **stored.data}

    async def report_input(code: str, period: str) -> ReportInput:
        """What the period's committee report shows; 404 without a summary for it."""
        stored = await replica.summaries(code)
        if period not in stored:
            raise HTTPException(404, "no summary for that period")
        summaries = [s.summary() for s in stored.values()]
        selected = next(s for s in summaries if s.period == period)
        reviews = await replica.reviews(code)
        the_period = Period.parse(period)
        return ReportInput(
            municipality_code=code, summaries=summaries, period=period,
            phase_means=phase_means(reviews, the_period, as_of(the_period, selected.as_of)),
            rereview_changes=rereview_changes(reviews),
            course_completed_on=await completed_on(replica, code, selected),
        )

    @data.get("/municipalities/{code}/summaries/{period}/report", response_class=HTMLResponse)
    async def get_report(code: MunicipalityCode, period: PeriodName) -> HTMLResponse:
        """The committee report (Danish, self-contained HTML with charts)."""
        html = await asyncio.to_thread(render_report, await report_input(code, period))
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @data.get("/municipalities/{code}/summaries/{period}/report.pdf", response_class=Response,
              responses={200: {"content": {"application/pdf": {}},
                               "description": "The committee report as a tagged PDF (PDF/UA-1)"},
                         503: {"description": "PDFs cannot be rendered on this server (WeasyPrint "
                                              "or Pango missing); the HTML report still works"}})
    async def get_report_pdf(code: MunicipalityCode, period: PeriodName) -> Response:
        """The committee report as PDF (PDF/UA-1, tagged, Danish; A4 with page numbers, "KLADDE"
        on every page of a draft): the HTML report laid out for print. 503 where WeasyPrint or
        the Pango library it needs is missing."""
        if report_pdf.unavailable() is not None:
            raise HTTPException(503, report_pdf.unavailable_message())
        pdf = await asyncio.to_thread(report_pdf.render_report_pdf, await report_input(code, period))
        return Response(pdf, media_type="application/pdf", headers={
            "Cache-Control": "no-store", "Content-Disposition": f'inline; filename="{code}-{period}.pdf"'})

    @api.get("/municipalities", response_model=MunicipalityList,
             responses={**responses.UNAUTHORIZED, **responses.UNAVAILABLE})
    async def list_municipalities(
            request: Request, principal: Annotated[Principal, Depends(case_data_or_session)],
    ) -> MunicipalityList:
        """The municipalities the principal may read that have summaries: code, name, region,
        whether the code is in Danmarks Statistik's list, and the latest period's status."""
        entries = latest_by_municipality(await replica.all_summaries(), principal)
        slot = audit_slot(request)
        slot.action, slot.municipalities = "list", [e.code for e in entries] or [None]
        return MunicipalityList(municipalities=entries)

    @api.get("/", response_class=HTMLResponse, responses={**responses.REDIRECT, **responses.UNAVAILABLE})
    async def index(request: Request) -> Response:
        """Periods the signed-in user may read, linking to reports and JSON; else to /login."""
        slot = audit_slot(request)
        slot.action, slot.route, slot.via = "list", "/", guard.presented(request)
        principal = await guard.optional(request)
        if principal is None:
            slot.reason = "no_credentials" if slot.via is None else "no_session"
            return RedirectResponse("/login", status_code=303)
        slot.principal = principal
        stored = await replica.all_summaries()
        entries = [
            IndexEntry(municipality_code=s.municipality_code, period=s.period, status=s.status,
                       revision=s.revision, as_of=datetime.fromisoformat(s.as_of),
                       report_url=f"/municipalities/{s.municipality_code}/summaries/{s.period}/report",
                       json_url=f"/municipalities/{s.municipality_code}/summaries/{s.period}")
            for s in sorted(stored, key=lambda s: (s.municipality_code, s.period))
            if principal.may_read(s.municipality_code)
        ]
        readable = sorted({e.municipality_code for e in entries})
        slot.municipalities = [*readable] if readable else [None]
        return HTMLResponse(render_index(entries, principal.label()), headers={"Cache-Control": "no-store"})

    def form(status: int, error: str | None, next_url: str, **headers: str) -> HTMLResponse:
        """The sign-in page with a fresh CSRF token (its value in a cookie, signed in the form)."""
        cookie, signed = browser.csrf.issue()
        page = render_login(error=error, next_url=safe_next_url(next_url), csrf_token=signed)
        response = HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store", **headers})
        response.set_cookie(CSRF_COOKIE, cookie, max_age=CSRF_MAX_AGE_S, httponly=True, samesite="strict",
                            secure=browser.secure_cookies, path="/login")
        return response

    @api.get("/login", response_class=HTMLResponse)
    async def login_page(next: str = "/") -> HTMLResponse:
        """The sign-in form."""
        return form(200, None, next)

    @api.post("/login", response_class=RedirectResponse, status_code=303,
              responses={**responses.SIGN_IN, **responses.UNAVAILABLE})
    async def login(request: Request, token: Annotated[str, Form(min_length=1, max_length=8192)],
                    next: Annotated[str, Form(max_length=2000)] = "/",
                    csrf_token: Annotated[str, Form(max_length=500)] = "") -> Response:
        """Sign in with a token from the tokens file or an OIDC access token: a session cookie."""
        slot = audit_slot(request)
        slot.action, slot.route, slot.via = "sign_in", "/login", "form"
        client = request.client.host if request.client else "unknown"
        wait = browser.limiter.retry_after(client)
        if wait is not None:
            slot.reason = "rate_limited"
            return form(429, TOO_MANY, next, **{"Retry-After": str(wait)})
        if not browser.csrf.valid(request.cookies.get(CSRF_COOKIE), csrf_token):
            slot.reason = "csrf"
            return form(403, EXPIRED_FORM, next)
        token = token.strip()
        try:
            if not token:
                raise Unauthorized("unknown_token", "no token")
            principal = await guard.bearer(token)
        except Unauthorized as exc:
            browser.limiter.failed(client)
            slot.reason, slot.principal = exc.reason, exc.who
            return form(401, UNKNOWN, next)
        slot.principal = principal
        session = await browser.sessions.open(principal, digest(token) if principal.kind == "token" else None)
        response = RedirectResponse(safe_next_url(next), status_code=303)
        response.set_cookie(SESSION_COOKIE, session, max_age=SESSION_MAX_AGE_S, httponly=True,
                            samesite="strict", secure=browser.secure_cookies, path="/")
        return response

    @api.post("/logout", response_class=RedirectResponse, status_code=303, responses=responses.REDIRECT)
    async def logout(request: Request) -> Response:
        """Sign out: the session ends on the server (its cookie is worth nothing from now on)."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            slot = audit_slot(request)
            slot.action, slot.route, slot.via = "sign_out", "/logout", "session"
            slot.principal = await browser.sessions.read(cookie)
            await browser.sessions.close(cookie)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                               secure=browser.secure_cookies)
        return response

    api.include_router(data)
    return api
