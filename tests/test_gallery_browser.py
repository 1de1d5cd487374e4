"""The smoke report opened in a real headless Chromium (Debian's package): the cards are
drawn, every image loads, a category filter hides the others, and a screenshot is saved."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from iiie.run import execute

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        msg = ("headless Chromium is not installed (Debian: apt-get install -y chromium; "
               "`make browser` does it, and .ci/run calls it)")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def _browse(tmp_path, url: str, *extra: str) -> str:
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=8000", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True, cwd=tmp_path).stdout


def _body(dom: str) -> dict[str, str]:
    tag = re.search(r"<body([^>]*)>", dom).group(1)
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag))


def test_smoke_report_in_a_real_browser(make_cfg, tmp_path):
    cfg = make_cfg("experiment=smoke", "data.n=12")
    execute(cfg)
    out = tmp_path / "results" / "smoke"
    page = out / "index.html"
    cards = json.loads((out / "cards.json").read_text())
    assert len(cards) == 12 + 4  # every sample, odd inputs too

    dom = _browse(tmp_path, page.as_uri(), "--dump-dom")
    body = _body(dom)
    drawn = re.findall(r'<div class="card[^"]*" data-id="([^"$]+)"', dom)  # not the script's template
    assert int(body["cards-shown"]) == len(cards) == len(drawn)
    assert body["images-done"] == "yes" and int(body["images-total"]) >= 3 * 12
    assert body["images-broken"] == "0", body
    assert 'id="results-table"' in dom and "overall" in dom

    removals = sorted(c["id"] for c in cards if c["category"] == "remove")
    dom = _browse(tmp_path, page.as_uri() + "?category=remove", "--dump-dom")
    shown = re.findall(r'class="card[^"]*" data-id="([^"$]+)" data-category="([^"$]+)"', dom)
    assert shown and sorted(i for i, _ in shown) == removals and {c for _, c in shown} == {"remove"}

    failed = [c["id"] for c in cards if c.get("failed")]
    dom = _browse(tmp_path, page.as_uri() + "?status=failed", "--dump-dom")
    assert failed and sorted(re.findall(r'class="card failed" data-id="([^"$]+)"', dom)) == sorted(failed)

    shot = out / "screenshot.png"
    _browse(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1280,1600")
    assert shot.stat().st_size > 10_000


def test_sweep_index_in_a_real_browser(make_cfg, tmp_path):
    """A sweep's ``index.html`` (its comparison page) draws one row per sample with every
    variant's picture, and every picture loads."""
    from test_report import _two_variant_sweep

    sweep = _two_variant_sweep(make_cfg, tmp_path)
    dom = _browse(tmp_path, (sweep / "index.html").as_uri(), "--dump-dom")
    body = _body(dom)
    assert int(body["cards-shown"]) == 5 and body["images-done"] == "yes"
    assert int(body["images-total"]) >= 5 * 3 and body["images-broken"] == "0", body
    assert 'href="telea/index.html"' in dom and 'href="ns/index.html"' in dom
