"""The issue's browser flow in Debian Chromium: intake sees the queue, a Medical Director denies."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI

from priorauth.demo.samples import hemgenix_request
from priorauth.service.app_service import PriorAuthService
from tests.api.conftest import action_codes, claim_response
from tests.api.test_submit import inquiry_for
from tests.databases import Databases
from tests.ui import browser
from tests.ui.conftest import DENY_LABS, DIRECTOR, INTAKE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        browser.unavailable() is not None, reason=f"browser tests: {browser.unavailable()}"
    ),
]
REASON = "AST 150 U/L on 2026-05-01 is 3.1 times the upper limit of normal."


@pytest.fixture
def db_url(tmp_path: Path, databases: Databases) -> str:
    return databases.migrated("sqlite", tmp_path)  # SQLite is enough for the UI flow


def test_intake_sees_queue_and_director_denies_with_reason(
    app: FastAPI, service: PriorAuthService
) -> None:
    deny = hemgenix_request(name="ui-deny", member_id="MUIDENY", labs=DENY_LABS)
    case_id = service.submit(orjson.dumps(deny)).record.id
    service.submit(orjson.dumps(hemgenix_request(name="ui-pend", labs={"777-3": None})))
    service.submit(orjson.dumps(hemgenix_request(name="ui-fast", priority="urgent")))

    with browser.serve(app) as base, browser.chromium() as chromium:
        # An intake reviewer signs in and sees the queue, soonest deadline first.
        intake = chromium.new_context().new_page()
        browser.sign_in(intake, base, *INTAKE)
        rows = intake.locator("table.queue tbody tr")
        assert rows.count() == 3
        assert "Expedited (24 h)" in rows.nth(0).inner_text()
        assert intake.get_by_role("heading", name="Review queue").is_visible()
        intake.get_by_role("link", name="ui-deny Case").click()
        assert intake.get_by_text("Only a Medical Director can decide this case.").is_visible()
        assert intake.locator("form[action$='/decision']").count() == 0

        # A Medical Director opens the pended case, reads the checklist and denies.
        md = chromium.new_context().new_page()
        browser.sign_in(md, base, *DIRECTOR)
        md.get_by_role("link", name="ui-deny Case").click()
        item = md.locator("#crit-I\\.ii")
        assert "Not met" in item.inner_text() and "ULN 48" in item.inner_text()
        assert md.locator("li.crit").count() > 20
        md.get_by_label("Deny", exact=True).check()
        md.locator("#c-I\\.ii").check()
        md.get_by_label("Reason").fill(REASON)
        md.get_by_role("button", name="Record the decision").click()
        md.wait_for_selector("text=Decision: Denied")
        assert REASON in md.locator("section.decided").inner_text()

        # The PAS inquiry answers A3 (not certified) with the Medical Director's reason.
        r = httpx.post(
            f"{base}/fhir/Claim/$inquire",
            content=orjson.dumps(inquiry_for(deny)),
            headers={"Content-Type": "application/fhir+json"},
        )
        assert r.status_code == 200, r.text
        cr = claim_response(r)
        assert cr["id"] == case_id
        assert action_codes(cr) == ["A3"]
        notes = " ".join(n["text"] for n in cr["processNote"])
        assert REASON in notes and "I.ii" in notes


def test_keyboard_alone_reaches_the_decision_with_a_visible_focus(
    app: FastAPI, service: PriorAuthService
) -> None:
    case_id = service.submit(orjson.dumps(hemgenix_request(name="ui-keys"))).record.id
    with browser.serve(app) as base, browser.chromium() as chromium:
        page = chromium.new_context().new_page()
        page.goto(f"{base}/ui/metrics")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("", "none")
        browser.sign_in(page, base, *DIRECTOR)
        page.goto(f"{base}/ui/cases/{case_id}")
        for _ in range(300):  # Tab through the page until the Approve choice has the focus
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "d-approve":
                break
        else:
            pytest.fail("the decision cannot be reached with the keyboard")
        page.keyboard.press("Space")
        assert page.is_checked("#d-approve")
        page.keyboard.press("Enter")  # submits the form
        page.wait_for_selector("text=Decision: Approved")
    assert service.case(case_id).status == "approved"
