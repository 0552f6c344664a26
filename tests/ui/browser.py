"""Debian Chromium driven by Playwright, and the app served by uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.api.live import serve

__all__ = ["CHROMIUM", "FLAGS", "chromium", "serve", "sign_in", "unavailable"]

CHROMIUM = Path("/usr/bin/chromium")
# Without the networking flags Chromium keeps dialing Google on this closed network.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def unavailable() -> str | None:
    """Why browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium, launched by path (Playwright downloads no browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Any, base: str, username: str, password: str) -> None:
    """Sign in with the keyboard, as a reviewer would."""
    page.goto(f"{base}/ui/queue")  # redirected to the sign-in page
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(f"{base}/ui/queue")
