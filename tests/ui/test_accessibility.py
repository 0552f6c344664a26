"""Accessibility checks on the rendered pages: labels, landmarks, headings and contrast."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from priorauth.service.app_service import PriorAuthService
from tests.ui.conftest import DENY_LABS, submit

CSS = Path(__file__).parents[2] / "src/priorauth/ui/static/ui.css"


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labels: set[str] = set()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "label" and a.get("for"):
            self.labels.add(a["for"] or "")
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append(a)


def _parse(html: str) -> Page:
    p = Page()
    p.feed(html)
    return p


def _pages(director: TestClient, intake: TestClient, anon: TestClient, cid: str) -> list[str]:
    return [
        anon.get("/ui/login").text,
        anon.get("/ui/metrics").text,
        director.get("/ui/queue").text,
        director.get(f"/ui/cases/{cid}").text,
        intake.get(f"/ui/cases/{cid}").text,
    ]


def test_every_form_control_has_a_label_and_pages_have_landmarks(
    director: tuple[TestClient, str],
    intake: tuple[TestClient, str],
    anon: TestClient,
    service: PriorAuthService,
) -> None:
    cid = submit(service, name="a11y", labs=DENY_LABS)
    pages = _pages(director[0], intake[0], anon, cid)
    for html in pages:
        page = _parse(html)
        for control in page.controls:
            labelled = control.get("id") in page.labels or control.get("aria-label")
            assert labelled, f"unlabelled control {control}"
        ids = [a["id"] for _, a in page.tags if a.get("id")]
        assert len(ids) == len(set(ids)), "duplicate ids"
        tags = [t for t, _ in page.tags]
        assert tags.count("h1") == 1 and "main" in tags and "nav" in tags
        assert '<html lang="en">' in html and 'href="#main"' in html  # skip link
    # the decision form groups its radios and checkboxes under legends
    assert pages[3].count("<legend>") >= 2


def _luminance(hex_color: str) -> float:
    rgb = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_text_colors_meet_wcag_aa_contrast() -> None:
    css = CSS.read_text()
    var = dict(re.findall(r"--([a-z]+):\s*(#[0-9a-f]{6})", css))
    pairs = [
        (var["ink"], var["card"]),
        (var["ink"], var["bg"]),
        (var["muted"], var["card"]),
        (var["muted"], var["bg"]),
        (var["blue"], var["card"]),
        (var["red"], "#fdecea"),  # overdue rows and deny badges
        (var["green"], "#e6f4ea"),
        (var["blue"], "#e7f0fa"),
        (var["amber"], "#fff4de"),
        (var["muted"], "#eef0f3"),
        ("#ffffff", "#14213d"),  # the header
        ("#ffffff", var["blue"]),  # buttons
        ("#ffffff", var["green"]),  # status icons
        ("#ffffff", var["red"]),
        ("#ffffff", var["amber"]),
    ]
    for fg, bg in pairs:
        assert _contrast(fg, bg) >= 4.5, f"{fg} on {bg}: {_contrast(fg, bg):.2f}"


@pytest.mark.parametrize("selector", [":focus-visible", ".skip:focus"])
def test_focus_is_always_visible(selector: str) -> None:
    assert selector in CSS.read_text()
