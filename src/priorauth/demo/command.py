"""`priorauth demo`, the quickstart's main job: build demo requests, judge them, print a summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from priorauth.demo.samples import Lab, hemgenix_request
from priorauth.policies.judging import judge

if TYPE_CHECKING:
    from priorauth.policies import PolicyLibrary
    from priorauth.service.app_service import PriorAuthService

_STYLE = {"approve": "green", "approve-modified": "cyan", "deny": "red", "pend": "yellow"}


def demo_requests() -> dict[str, dict[str, Any]]:
    """One request for each recommendation, built from the sample builder."""
    return {
        "approve": hemgenix_request(name="demo-approve", weight=(88.0, "kg")),
        "approve-modified": hemgenix_request(
            name="demo-modified", weight=(88.0, "kg"), ndc="0053-0170-17"
        ),
        "deny": hemgenix_request(
            name="demo-deny", labs={"1920-8": Lab(150, "U/L", uln=48, days_before=3)}
        ),
        "pend": hemgenix_request(
            name="demo-pend", labs={"777-3": None}, attestations={"no-uncontrolled-hiv": None}
        ),
    }


def load_demo(service: PriorAuthService) -> int:
    """Submit the demo requests through the service, as a provider system would."""
    for bundle in demo_requests().values():
        service.submit(orjson.dumps(bundle))
    return len(demo_requests())


def run_demo(library: PolicyLibrary, fmt: str) -> None:
    results: dict[str, dict[str, Any]] = {}
    for name, bundle in demo_requests().items():
        judged = judge(bundle, library)
        result = judged.to_dict()
        assert result is not None, "the demo requests are for a shipped policy"
        results[name] = result
    if fmt == "json":
        typer.echo(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        return
    console = Console(highlight=False)
    t = Table(title="priorauth demo: four Hemgenix requests judged against Cigna IP0535")
    for col in ("request", "recommendation", "dose", "not met", "unknown"):
        t.add_column(col, no_wrap=col in ("request", "recommendation", "dose"))
    for name, d in results.items():
        rec = d["recommendation"]
        t.add_row(
            name,
            f"[{_STYLE[rec]}]{rec}[/]",
            (d["dose"]["ndc"] or d["dose"]["text"]) if d["dose"] else "—",
            ", ".join(r["id"] for r in d["reasons"]) or "—",
            ", ".join(_unknown_leaves(d)) or "—",
        )
    console.print(t)
    console.print(
        "Every review goes to the Medical Director; these are the engine's recommendations.\n"
        "Each criterion with its evidence: priorauth evaluate BUNDLE.json [--claims CLAIMS.ndjson]"
    )


def _unknown_leaves(d: dict[str, Any]) -> list[str]:
    """Unknown criteria the recommendation waits on: leaves whose every parent is unknown too."""
    crit = d["criteria"]

    def parents(cid: str) -> list[str]:
        parts = cid.split(".")
        return [".".join(parts[:n]) for n in range(1, len(parts))]

    return [
        i
        for i, c in crit.items()
        if c["status"] == "unknown"
        and not any(j.startswith(i + ".") for j in crit)
        and all(crit[p]["status"] == "unknown" for p in parents(i) if p in crit)
    ]
