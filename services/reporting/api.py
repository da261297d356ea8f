"""The reporting HTTP API: summaries as JSON, the committee report as HTML, browser sign-in."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from schemas.summary import SummaryData
from services.common.paths import MunicipalityCode, PeriodName
from services.reporting.auth import SESSION_COOKIE, SESSION_MAX_AGE_S, Guard
from services.reporting.domain.periods import Period, as_of
from services.reporting.domain.reviews import phase_means, rereview_changes
from services.reporting.replica import Replica
from services.reporting.report import IndexEntry, ReportInput, render_index, render_login, render_report
from services.reporting.report import safe_next as safe_next_url


def router(replica: Replica, guard: Guard, secure_cookies: bool = False) -> APIRouter:
    api = APIRouter()

    @api.get("/municipalities/{code}/summaries")
    async def list_summaries(request: Request, code: MunicipalityCode) -> dict[str, Any]:
        """Periods with their latest status and revision."""
        guard.require(request, code)
        stored = await replica.summaries(code)
        return {"municipality_code": code, "periods": [
            {"period": p, "status": d["status"], "revision": d["revision"], "as_of": d["data"]["as_of"]}
            for p, d in sorted(stored.items())]}

    @api.get("/municipalities/{code}/summaries/{period}")
    async def get_summary(request: Request, code: MunicipalityCode, period: PeriodName) -> dict[str, Any]:
        """The latest data published for the period, with the municipality code."""
        guard.require(request, code)
        doc = (await replica.summaries(code)).get(period)
        if doc is None:
            raise HTTPException(404, "no summary for that period")
        return {"municipality_code": code, **doc["data"]}

    @api.get("/municipalities/{code}/summaries/{period}/report", response_class=HTMLResponse)
    async def get_report(request: Request, code: MunicipalityCode, period: PeriodName) -> HTMLResponse:
        """The committee report (Danish, self-contained HTML with charts)."""
        guard.require(request, code)
        stored = await replica.summaries(code)
        if period not in stored:
            raise HTTPException(404, "no summary for that period")
        summaries = [SummaryData.model_validate(d["data"], strict=False) for d in stored.values()]
        selected = next(s for s in summaries if s.period == period)
        reviews = await replica.reviews(code)
        the_period = Period.parse(period)
        report_input = ReportInput(
            municipality_code=code, summaries=summaries, period=period,
            phase_means=phase_means(reviews, the_period, as_of(the_period, selected.as_of)),
            rereview_changes=rereview_changes(reviews),
        )
        html = await asyncio.to_thread(render_report, report_input)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @api.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        """Periods the signed-in user may read, linking to reports and JSON."""
        principal = guard.principal(request)
        if principal is None:
            return RedirectResponse("/login", status_code=303)
        docs = await replica.all_summaries()
        entries = [
            IndexEntry(municipality_code=d["municipality_code"], period=d["period"], status=d["status"],
                       revision=d["revision"], as_of=datetime.fromisoformat(d["data"]["as_of"]),
                       report_url=f"/municipalities/{d['municipality_code']}/summaries/{d['period']}/report",
                       json_url=f"/municipalities/{d['municipality_code']}/summaries/{d['period']}")
            for d in sorted(docs, key=lambda d: (d["municipality_code"], d["period"]))
            if principal.may_read(d["municipality_code"])
        ]
        scope = "alle kommuner" if principal.scope == "*" else f"kommune {principal.scope}"
        return HTMLResponse(render_index(entries, scope), headers={"Cache-Control": "no-store"})

    @api.get("/login", response_class=HTMLResponse)
    async def login_page(next: str = "/") -> HTMLResponse:
        return HTMLResponse(render_login(next_url=safe_next_url(next)))

    @api.post("/login", response_class=HTMLResponse)
    async def login(token: Annotated[str, Form()], next: Annotated[str, Form()] = "/") -> Response:
        token = token.strip()
        principal = guard.tokens.lookup(token)
        if principal is None:
            return HTMLResponse(render_login(error="Ukendt adgangsnøgle.", next_url=safe_next_url(next)),
                                status_code=401)
        response = RedirectResponse(safe_next_url(next), status_code=303)
        response.set_cookie(SESSION_COOKIE, guard.sessions.issue(token), max_age=SESSION_MAX_AGE_S,
                            httponly=True, samesite="strict", secure=secure_cookies, path="/")
        return response

    @api.post("/logout")
    async def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return api
