"""Determination letters (HTML and PDF) and the CMS-0057-F metrics (page and JSON)."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from pypdf import PdfReader

from priorauth.service.app_service import PriorAuthService
from priorauth.ui.charts import chart_svg
from tests.api.conftest import Clock
from tests.ui.conftest import DENY_LABS, MD, submit

REASON = "AST 150 U/L is more than three times the upper limit of normal."


def _pdf_text(content: bytes) -> str:
    return " ".join(
        " ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(content)).pages
    )


def test_denial_letter_names_each_reason_with_its_criterion(
    director: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, _ = director
    cid = submit(service, name="l-deny", labs=DENY_LABS)
    assert client.get(f"/ui/cases/{cid}/letter").status_code == 409  # not decided yet
    service.decide(cid, "deny", REASON, ("I.ii",), who=MD)
    auth = service.case(cid).auth_number
    html = client.get(f"/ui/cases/{cid}/letter").text
    for text in (
        "l-deny Case",
        auth,
        "Hemgenix",
        "Decision: Denied",
        "Policy criterion I.ii:",
        "Aspartate aminotransferase level is no more than two times the upper limit of normal.",
        "AST 150 U/L on 2026-05-01 is 3.12 × ULN 48",
        REASON,
        "Dr. Maya Director",
        "appeal",
    ):
        assert text in html, text
    r = client.get(f"/ui/cases/{cid}/letter.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = _pdf_text(r.content)
    for words in (
        "l-deny Case",
        auth,
        "Hemgenix",
        "Decision: Denied",
        "Policy criterion I.ii",
        "no more than two times the upper limit of normal",
        "3.12 x ULN 48",
        REASON,
    ):
        assert words in text, words


def test_approval_letter_gives_kit_and_window(
    director: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, _ = director
    cid = submit(service, name="l-ok")
    service.decide(cid, "approve", who=MD)
    html = client.get(f"/ui/cases/{cid}/letter").text
    assert "1 kit, NDC 0053-0180-18 (18 vials)" in html and "2026-05-04 to 2026-08-01" in html
    text = _pdf_text(client.get(f"/ui/cases/{cid}/letter.pdf").content)
    assert "1 kit, NDC 0053-0180-18 (18 vials)" in text and "2026-05-04 to 2026-08-01" in text
    assert service.case(cid).auth_number in text


def test_metrics_shares_times_and_chart(
    anon: TestClient, service: PriorAuthService, clock: Clock
) -> None:
    a = submit(service, name="m-1")
    b = submit(service, name="m-2", labs=DENY_LABS)
    c = submit(service, name="m-3", priority="urgent")
    submit(service, name="m-open")
    clock.advance(hours=10)
    service.decide(a, "approve", who=MD)
    service.decide(c, "approve", who=MD)
    clock.advance(hours=70)  # b is decided 80 h after receipt: past the 72 h deadline
    service.decide(b, "deny", "AST high", ("I.ii",), who=MD)
    m = anon.get("/ui/metrics.json").json()  # aggregates only: published without sign-in
    assert m["requests"] == {
        "received": 4,
        "decided": 3,
        "open": 1,
        "open_overdue": 1,
        "cancelled": 0,
    }
    assert m["share"] == {
        "approved": 0.6667,
        "denied": 0.3333,
        "approved_after_extended_timeframe": 0.0,
    }
    assert m["time_to_decision"]["standard"] == {
        "decided": 2,
        "mean_hours": 45.0,
        "median_hours": 45.0,
    }
    assert m["time_to_decision"]["expedited"]["mean_hours"] == 10.0
    days = {d["date"]: d for d in m["decisions_by_day"]}
    assert days["2026-05-05"]["approved"] == 2 and days["2026-05-07"]["denied"] == 1
    page = anon.get("/ui/metrics").text
    assert "66.7 %" in page and "<svg" in page and "45.0 h" in page


def test_a_late_approval_counts_as_after_an_extended_timeframe(
    anon: TestClient, service: PriorAuthService, clock: Clock
) -> None:
    cid = submit(service, name="m-late", priority="urgent")
    clock.advance(hours=30)
    service.decide(cid, "approve", who=MD)
    m = anon.get("/ui/metrics.json").json()
    assert m["share"]["approved_after_extended_timeframe"] == 1.0
    assert m["counts"]["approved_late"] == 1


def test_chart_is_plain_svg_with_a_title_per_bar() -> None:
    svg = chart_svg(
        [
            {"date": "2026-05-01", "approved": 2, "modified": 0, "denied": 1},
            {"date": "2026-05-02", "approved": 0, "modified": 0, "denied": 0},
        ]
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<rect") == 2 and "2026-05-01: 1 denied" in svg
    assert 'role="img"' in svg
