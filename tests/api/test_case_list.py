"""The case lists read what they show from columns filled at submission, never the bundles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from priorauth.demo.samples import hemgenix_request
from priorauth.service.app_service import PriorAuthService
from priorauth.store.db import make_engine, upgrade
from priorauth.store.models import CaseRow
from priorauth.ui.views import member_of

WHEN = datetime(2026, 5, 1, tzinfo=UTC)


def test_listing_open_cases_decodes_no_bundle(
    service: PriorAuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        service.submit(orjson.dumps(hemgenix_request(name=f"listed-{n}")))
    decoded: list[int] = []
    loads = orjson.loads

    def counting_loads(data: Any) -> Any:
        decoded.append(1)
        return loads(data)

    monkeypatch.setattr(orjson, "loads", counting_loads)
    members = [member_of(r) for r in service.open_cases()]
    assert decoded == []
    assert sorted(m.name for m in members) == [f"listed-{n} Case" for n in range(3)]
    assert {m.drug for m in members} == {"Hemgenix"}
    assert {m.prescriber for m in members} == {"Ada Okafor"}
    assert {m.provider for m in members} == {"Regional Hemophilia Treatment Center"}


def test_migration_0009_fills_the_summary_of_the_cases_already_stored(
    blank_db_url: str,
) -> None:
    from alembic import command
    from sqlalchemy import MetaData, Table

    from priorauth.store.db import _alembic_config

    db_url = blank_db_url  # migrated here, step by step
    command.upgrade(_alembic_config(db_url), "0008")
    engine = make_engine(db_url)
    cases = Table("cases", MetaData(), autoload_with=engine)
    try:
        with engine.begin() as c:
            for case_id, raw in (
                ("old-good", orjson.dumps(hemgenix_request(name="before"))),
                ("old-broken", b"{not json"),
            ):
                c.execute(
                    cases.insert().values(
                        id=case_id,
                        auth_number=f"PA-{case_id}",
                        submitter="http://hl7.org/fhir/sid/us-npi|1234567893",
                        claim_identifier=f"urn:old|{case_id}",
                        member_id="M1",
                        service_codes="J1411",
                        status="pended",
                        expedited=False,
                        received_at=WHEN,
                        due_at=WHEN,
                        updated_at=WHEN,
                        request_bundle=raw,
                        keys={},
                    )
                )
        upgrade(db_url)
        with engine.connect() as c:
            rows = {
                r.id: r
                for r in c.execute(
                    select(
                        CaseRow.id,
                        CaseRow.member_name,
                        CaseRow.member_birth_date,
                        CaseRow.prescriber_name,
                        CaseRow.service_name,
                    )
                )
            }
        good = rows["old-good"]
        assert (good.member_name, good.member_birth_date, good.prescriber_name) == (
            "before Case",
            "1979-11-23",
            "Ada Okafor",
        )
        assert good.service_name
        assert rows["old-broken"].member_name is None  # unreadable: shown as not given
    finally:
        engine.dispose()
