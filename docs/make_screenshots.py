"""Render the web app's screenshots for the README (Debian Chromium via Playwright).

Run from the repository root: `uv run python docs/make_screenshots.py`.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the browser helpers live with the tests

from tests.ui import browser  # noqa: E402

from priorauth.api.app import create_app  # noqa: E402
from priorauth.demo.command import demo_requests  # noqa: E402
from priorauth.demo.samples import hemgenix_request  # noqa: E402
from priorauth.policies import builtin  # noqa: E402
from priorauth.service.app_service import PriorAuthService  # noqa: E402
from priorauth.settings import Settings  # noqa: E402
from priorauth.store.db import make_engine, upgrade  # noqa: E402
from priorauth.ui import ensure_demo_users, install  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
NOW = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def demo_service(db: Path) -> PriorAuthService:
    """A store with decided history (for the metrics) and an open queue."""
    url = f"sqlite:///{db}"
    upgrade(url)
    clock = Clock()
    settings = Settings(database_url=url, auth_enabled=False)
    svc = PriorAuthService(settings, make_engine(url), builtin(), clock=clock)
    ensure_demo_users(svc)
    # Three weeks of decisions, a few a day, some late, for the chart.
    for day in range(21, 0, -1):
        for n in range(day % 3 + 1):
            clock.now = NOW - timedelta(days=day, hours=n * 5)
            priority = "urgent" if (day + n) % 5 == 0 else "normal"
            bundle = hemgenix_request(name=f"h{day}-{n}", member_id=f"H{day}{n}", priority=priority)
            case = svc.submit(orjson.dumps(bundle))
            clock.now += timedelta(
                hours=(6, 30, 80)[(day + n) % 3] / (3 if priority == "urgent" else 1)
            )
            kind = ("deny", "approve", "approve", "approve-modified")[(day + n) % 4]
            reason = "Liver function outside the policy's limits." if kind == "deny" else None
            svc.decide(case.record.id, kind, "director", reason, ("I.ii",) if reason else ())
    clock.now = NOW - timedelta(hours=30)  # received yesterday, expedited: overdue now
    svc.submit(orjson.dumps(hemgenix_request(name="late-urgent", priority="urgent")))
    clock.now = NOW - timedelta(hours=2)
    for bundle in demo_requests().values():
        svc.submit(orjson.dumps(bundle))
    clock.now = NOW
    return svc


def main() -> None:
    why = browser.unavailable()
    if why:
        sys.exit(f"cannot take screenshots: {why}")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        svc = demo_service(Path(tmp) / "shots.db")
        app = create_app(svc)
        install(app, svc, secure_cookie=False)
        with browser.serve(app) as base, browser.chromium() as chromium:
            page = chromium.new_context(viewport={"width": 1360, "height": 1000}).new_page()
            browser.sign_in(page, base, "director", "director-demo-2026")
            page.screenshot(path=OUT / "queue.png", full_page=True)
            page.get_by_role("link", name="demo-deny Case").click()
            page.set_viewport_size({"width": 1360, "height": 1300})
            page.screenshot(path=OUT / "case.png")  # the first screen: what a reviewer sees
            page.goto(f"{base}/ui/metrics")
            page.screenshot(path=OUT / "metrics.png", full_page=True)
        svc.notifier.close()
    for f in sorted(OUT.glob("*.png")):
        print(f.relative_to(ROOT))


if __name__ == "__main__":
    main()
