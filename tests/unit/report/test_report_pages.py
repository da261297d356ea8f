from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.reporting.report import IndexEntry, render_index, render_login

pytestmark = pytest.mark.unit

CET = timezone(timedelta(hours=1))


def entry(period: str, status: str, revision: int = 0, code: str = "480") -> IndexEntry:
    return IndexEntry(code, period, status, revision, datetime(2022, 3, 15, 10, 23, tzinfo=CET),
                      f"/municipalities/{code}/summaries/{period}/report",
                      f"/municipalities/{code}/summaries/{period}")


def test_login_form_posts_token_and_next() -> None:
    html = render_login(next_url="/municipalities/480/summaries/2022H1/report")
    assert '<html lang="da">' in html
    assert '<form method="post" action="/login">' in html
    assert 'name="token"' in html and 'type="password"' in html
    assert ('<input type="hidden" name="next" '
            'value="/municipalities/480/summaries/2022H1/report">') in html
    assert 'role="alert"' not in html
    assert html.count("<h1>") == 1


def test_login_error_is_escaped_and_next_stays_local() -> None:
    html = render_login(error="Ukendt nøgle <b>", next_url='//evil.example/"><script>')
    assert 'role="alert"' in html
    assert "Ukendt nøgle &lt;b&gt;" in html
    assert "<script" not in html
    assert 'name="next" value="/"' in html
    assert 'aria-invalid="true"' in html


@pytest.mark.parametrize("bad", ["https://evil.example/", "//evil.example", "/\\evil", "",
                                 "javascript:alert(1)", "/ok\n"])
def test_next_must_be_a_local_path(bad: str) -> None:
    assert 'name="next" value="/"' in render_login(next_url=bad)


def test_index_lists_periods_with_status_and_links() -> None:
    html = render_index([entry("2021H2", "final"), entry("2022H1", "draft"),
                         entry("2021H1", "revised", 2)], "Nordfyns Kommune")
    assert "Nordfyns Kommune" in html
    assert '<form method="post" action="/logout">' in html
    assert 'href="/municipalities/480/summaries/2022H1/report"' in html
    assert 'href="/municipalities/480/summaries/2022H1"' in html
    assert "KLADDE – ikke endelig" in html
    assert "Endelig" in html
    assert "Revideret (revision 2)" in html
    assert "15. marts 2022 kl. 10.23" in html
    assert "<caption>" in html and 'scope="col"' in html
    # Newest period first.
    assert html.index("1. halvår 2022") < html.index("2. halvår 2021") < html.index(
        "1. halvår 2021")
    # One municipality: no municipality column.
    assert "<th scope=\"col\">Kommune</th>" not in html


def test_index_for_several_municipalities_and_hostile_scope() -> None:
    html = render_index([entry("2022H1", "final", code="607"), entry("2022H1", "final")],
                        "<i>Alle</i>")
    assert "&lt;i&gt;Alle&lt;/i&gt;" in html
    assert '<th scope="col">Kommune</th>' in html
    assert html.index("Nordfyns Kommune") < html.index("Fredericia Kommune")


def test_empty_index() -> None:
    html = render_index([], "Nordfyns Kommune")
    assert "Der er endnu ingen halvårsstatus." in html
    assert "<table" not in html
