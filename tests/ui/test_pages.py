"""The queue, the case page and the decision form, through HTTP."""

from __future__ import annotations

import re
from datetime import timedelta

import orjson
from fastapi.testclient import TestClient

from priorauth.demo.samples import hemgenix_request
from priorauth.service.app_service import PriorAuthService
from tests.api.conftest import Clock, action_codes, claim_response
from tests.api.test_submit import inquiry_for
from tests.ui.conftest import DENY_LABS, MD, submit


def _rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return re.findall(r"<tr.*?</tr>", body, re.S)


def test_queue_soonest_deadline_first_with_clock_and_overdue(
    intake: tuple[TestClient, str], service: PriorAuthService, clock: Clock
) -> None:
    client, _ = intake
    submit(service, name="q-standard")
    clock.advance(hours=1)
    submit(service, name="q-urgent", priority="urgent")
    clock.advance(hours=30)  # the urgent one (24 h) is now overdue
    rows = _rows(client.get("/ui/queue").text)
    assert len(rows) == 2
    assert "q-urgent Case" in rows[0] and 'class="overdue"' in rows[0]
    assert "overdue by 6 h 00 min" in rows[0] and "Expedited (24 h)" in rows[0]
    assert "q-standard Case" in rows[1] and "1 d 17 h left" in rows[1]
    assert "Standard (72 h)" in rows[1] and "Approve" in rows[1]
    overdue = _rows(client.get("/ui/queue?status=overdue").text)
    assert len(overdue) == 1 and "q-urgent" in overdue[0]


def test_queue_filters_by_recommendation_and_status(
    director: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, token = director
    deny = submit(service, name="f-deny", labs=DENY_LABS)
    submit(service, name="f-pend", labs={"777-3": None})
    submit(service, name="f-ok")
    only = _rows(client.get("/ui/queue?recommendation=pend").text)
    assert len(only) == 1 and "f-pend" in only[0]
    data = {"decision": "deny", "criteria": "I.ii", "reason": "AST high", "csrf_token": token}
    client.post(f"/ui/cases/{deny}/decision", data=data)
    assert len(_rows(client.get("/ui/queue").text)) == 2
    decided = _rows(client.get("/ui/queue?status=decided").text)
    assert len(decided) == 1 and "Denied" in decided[0]
    assert len(_rows(client.get("/ui/queue?status=all&recommendation=deny").text)) == 1
    # an unknown filter value falls back to the default instead of failing
    assert client.get("/ui/queue?status=bogus&recommendation=x").status_code == 200


def test_case_page_shows_the_checklist_in_policy_order(
    intake: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, _ = intake
    cid = submit(service, name="c-deny", labs=DENY_LABS)
    html = client.get(f"/ui/cases/{cid}").text
    ids = re.findall(r'id="crit-([^"]+)"', html)
    policy = service.library.versions["cigna-ip0535"][-1]
    assert ids == list(policy.criteria)  # every criterion, in the policy's own order
    i_ii = html.split('id="crit-I.ii"', 1)[1].split("</li>\n", 1)[0]
    assert "Not met" in i_ii and "Documentation" in i_ii
    assert "LOINC 1920-8; 150 U/L; ULN 48 U/L; dated 2026-05-01" in i_ii
    assert policy.criteria["I.ii"].text.replace("<", "&lt;") in i_ii
    l_i = html.split('id="crit-L.i"', 1)[1].split("</li>\n", 1)[0]
    assert "Cockcroft-Gault creatinine clearance: 127.7 mL/min" in l_i
    assert "Attestation" in html and "Claims history" in html
    assert "2 mL/kg × 88 kg = 176 mL → 1 kit, NDC 0053-0180-18 (18 vials)." in html
    assert "✓ matches" in html
    assert "Submitted by the provider" in html


def test_pended_case_lists_what_is_missing_and_intake_can_request_it(
    intake: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, token = intake
    cid = submit(service, name="c-pend", labs={"777-3": None})
    html = client.get(f"/ui/cases/{cid}").text
    assert "Platelet count (LOINC 777-3) dated within 30 days." in html
    items = re.findall(r'name="items" value="([^"]+)"', html)
    r = client.post(
        f"/ui/cases/{cid}/documentation-request",
        data={"items": items, "note": "Please send a recent CBC.", "csrf_token": token},
    )
    assert r.status_code == 303
    html = client.get(f"/ui/cases/{cid}").text
    assert "Documentation requested" in html and "Please send a recent CBC." in html
    assert "Ivy Intake" in html
    empty = client.post(f"/ui/cases/{cid}/documentation-request", data={"csrf_token": token})
    assert empty.status_code == 422


def test_a_denial_needs_criteria_and_a_reason(
    director: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, token = director
    cid = submit(service, name="c-need", labs=DENY_LABS)
    page = client.get(f"/ui/cases/{cid}").text
    # only the unmet criteria that sink the request are offered first
    assert not re.search(r'name="criteria" value="[^"]+" checked', page)  # chosen, not assumed
    offered = page.split("<details>", 1)[0]
    assert 'id="c-I.ii"' in offered and 'id="c-E.ii.a"' not in offered
    r = client.post(
        f"/ui/cases/{cid}/decision", data={"decision": "deny", "reason": "x", "csrf_token": token}
    )
    assert r.status_code == 422 and "names the unmet policy criteria" in r.text
    assert 'value="deny" checked' in r.text  # the form keeps what was entered
    r = client.post(
        f"/ui/cases/{cid}/decision",
        data={"decision": "deny", "criteria": "I.ii", "csrf_token": token},
    )
    assert r.status_code == 422 and "needs a specific reason" in r.text
    assert service.case(cid).status == "pended"


def test_approve_with_the_right_kit_flows_to_pas(
    director: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, token = director
    bundle = hemgenix_request(name="c-mod", ndc="0053-0170-17")
    cid = service.submit(orjson.dumps(bundle)).record.id
    html = client.get(f"/ui/cases/{cid}").text
    assert "✗ differs from the right dose" in html
    assert '<option value="0053-0180-18" selected>' in html
    r = client.post(
        f"/ui/cases/{cid}/decision",
        data={"decision": "approve-modified", "product_ndc": "0053-0180-18", "csrf_token": token},
    )
    assert r.status_code == 303
    case = service.case(cid)
    assert case.status == "modified" and case.decision.product_ndc == "0053-0180-18"
    assert case.decision.decided_by == "director"
    inq = client.post(
        "/fhir/Claim/$inquire",
        content=orjson.dumps(inquiry_for(bundle)),
        headers={"Content-Type": "application/fhir+json"},
    )
    cr = claim_response(inq)
    assert action_codes(cr) == ["A6"]  # X12 306: modified
    html = client.get(f"/ui/cases/{cid}").text
    assert "Decision: Approved with a modified product or quantity" in html
    assert "Dr. Maya Director" in html


def test_approve_modified_takes_the_quantity_typed_and_refuses_an_unreadable_one(
    director: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, token = director
    bundle = hemgenix_request(name="c-qty", ndc="0053-0170-17")
    cid = service.submit(orjson.dumps(bundle)).record.id
    bad = client.post(
        f"/ui/cases/{cid}/decision",
        data={"decision": "approve-modified", "quantity": "two", "csrf_token": token},
    )
    assert bad.status_code == 422 and "greater than 0" in bad.text
    assert 'value="two"' in bad.text  # what was typed survives the error
    assert service.case(cid).status == "pended"
    r = client.post(
        f"/ui/cases/{cid}/decision",
        data={
            "decision": "approve-modified",
            "product_ndc": "0053-0190-19",
            "quantity": "1",
            "csrf_token": token,
        },
    )
    assert r.status_code == 303
    d = service.case(cid).decision
    assert d is not None
    assert (d.product_ndc, d.product_vials, d.quantity, d.unit) == ("0053-0190-19", 19, 1, "kit")
    inq = client.post(
        "/fhir/Claim/$inquire",
        content=orjson.dumps(inquiry_for(bundle)),
        headers={"Content-Type": "application/fhir+json"},
    )
    cr = claim_response(inq)
    added = cr["addItem"][0]
    assert added["productOrService"]["coding"][0]["code"] == "0053-0190-19"
    assert added["quantity"] == {"value": 1, "unit": "kit"}
    notes = " ".join(n["text"] for n in cr["processNote"])
    assert "covers 1 kit, NDC 0053-0190-19 (19 vials)" in notes
    # The request states no unit: its quantity is in the billing unit, as the engine reads it.
    assert "in place of the requested 1 kit, NDC 0053-0170-17" in notes


def test_deciding_twice_shows_the_conflict(
    director: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, token = director
    cid = submit(service, name="c-twice")
    service.decide(cid, "approve", who=MD)
    r = client.post(f"/ui/cases/{cid}/decision", data={"decision": "approve", "csrf_token": token})
    assert r.status_code == 409 and "not open for a decision" in r.text


def test_unknown_case_is_a_404_page(intake: tuple[TestClient, str]) -> None:
    client, _ = intake
    r = client.get("/ui/cases/no-such-case")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]


def test_clock_shows_days_and_hours(
    intake: tuple[TestClient, str], service: PriorAuthService, clock: Clock
) -> None:
    client, _ = intake
    cid = submit(service, name="c-clock")
    clock.advance(hours=71, minutes=30)
    html = client.get(f"/ui/cases/{cid}").text
    assert "0 h 30 min left" in html
    clock.advance(minutes=31)
    assert "overdue by 0 h 01 min" in client.get(f"/ui/cases/{cid}").text
    assert timedelta(hours=72) == service.case(cid).due_at - service.case(cid).received_at
