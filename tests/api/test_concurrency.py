"""Truly concurrent requests to a real server: one approval per member, one case per request."""

from __future__ import annotations

import threading

import httpx
import orjson
from sqlalchemy import func, select

from priorauth.demo.samples import hemgenix_request
from priorauth.service.app_service import PriorAuthService
from priorauth.store.models import CaseRow
from tests.api.live import live_server

N = 8


def _together(n: int, fn) -> list:  # type: ignore[no-untyped-def]
    """Run fn(i) in n threads released at the same instant."""
    barrier = threading.Barrier(n)
    out: list = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        out[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_concurrent_approvals_for_one_member_give_one_approval(service: PriorAuthService) -> None:
    with live_server(service) as base, httpx.Client(base_url=base, timeout=30) as c:
        ids = []
        for i in range(N):
            r = c.post(
                "/fhir/Claim/$submit",
                content=orjson.dumps(hemgenix_request(name=f"race-{i}", member_id="MRACE")),
            )
            assert r.status_code == 201
            ids.append(r.json()["entry"][0]["resource"]["id"])

        def approve(i: int) -> int:
            with httpx.Client(base_url=base, timeout=30) as each:
                r = each.post(
                    f"/api/cases/{ids[i]}/decision",
                    json={"decision": "approve"},
                )
                return r.status_code

        codes = _together(N, approve)
    assert sorted(codes) == [200] + [409] * (N - 1), codes
    with service.sessions() as s:
        approved = s.scalar(
            select(func.count())
            .select_from(CaseRow)
            .where(CaseRow.member_id == "MRACE", CaseRow.status.in_(["approved", "modified"]))
        )
    assert approved == 1


def test_concurrent_identical_submissions_make_one_case(service: PriorAuthService) -> None:
    body = orjson.dumps(hemgenix_request(name="race-dup"))
    with live_server(service) as base:

        def submit(_: int) -> tuple[int, str]:
            with httpx.Client(base_url=base, timeout=30) as c:
                r = c.post("/fhir/Claim/$submit", content=body)
                return r.status_code, r.json()["entry"][0]["resource"]["id"]

        results = _together(N, submit)
    codes = sorted(code for code, _ in results)
    assert codes == [200] * (N - 1) + [201], codes
    assert len({cid for _, cid in results}) == 1
    with service.sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaseRow)) == 1
