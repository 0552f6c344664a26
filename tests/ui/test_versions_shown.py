"""The case page and the letter name the policy version chosen and mark reconstructed wording."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient

from priorauth.service.app_service import PriorAuthService
from tests.ui.conftest import MD, submit


def test_an_older_version_is_named_and_its_reconstructed_wording_marked(
    director: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, _ = director
    # Reviewed 2024-05-20, date of service 2024-06-10: IP0535 as revised on 6/6/2024.
    cid = submit(service, name="v-old", as_of=date(2024, 5, 20))
    record = service.case(cid)
    assert record.evaluation is not None and record.evaluation.policy is not None
    assert record.evaluation.policy.version == "2024-06-06"
    # That version also asks about Factor IX prophylaxis after the infusion (criterion O).
    assert record.recommendation == "pend"
    html = client.get(f"/ui/cases/{cid}").text
    assert "IP0535 v2024-06-06" in html
    assert "in force on the date of service 2024-06-10" in html
    assert html.count("wording reconstructed from the revision of 2025-03-27") == 4
    service.decide(cid, "deny", "No answer on prophylaxis after infusion.", ("O",), who=MD)
    letter = client.get(f"/ui/cases/{cid}/letter").text
    assert "(version 2024-06-06, in force on the date of service 2024-06-10)" in letter
    assert "Policy criterion O:" in letter
    assert "wording reconstructed from the policy revision of 2025-03-27" in letter
