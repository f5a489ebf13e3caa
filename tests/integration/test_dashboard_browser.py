"""The dashboard in headless Chromium against the real stack: an alert appears, a click
acknowledges it, the ack reaches the acks topic; the screenshot goes to docs/dashboard.png.

Needs Debian's Chromium (``apt-get install -y chromium``; Playwright's own browser
download is not used) and the ``playwright`` Python package (test extra).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import orjson
import pytest

from stream.cli import spawn_worker, stop_process
from stream.kafka import ensure_topics
from stream.settings import Settings
from tests.integration.apistack import (
    TOKEN,
    free_port,
    produce_ward,
    read_topic,
    spawn_api,
    wait_ready,
)
from twin.alerting import alert_id

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("TWIN_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


@pytest.fixture(scope="module")
def chromium() -> str:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium`")
    pytest.importorskip("playwright", reason='pip install "twinstream[test]" (playwright)')
    return CHROMIUM


async def test_dashboard_alert_and_acknowledge(
    chromium: str, isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from playwright.async_api import async_playwright

    for k, v in isolated_env.items():
        monkeypatch.setenv(k, v)
    settings = Settings()
    await ensure_topics(settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = spawn_api(isolated_env, port, str(tmp_path / "api.log"))
    worker = spawn_worker(env=isolated_env, log_path=str(tmp_path / "worker.log"))
    want = alert_id("p-0003", "news2", 1)
    try:
        await wait_ready(base, api)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 820})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{base}/?token={TOKEN}")
            await page.wait_for_selector("#live.on", timeout=15000)  # SSE connected
            assert "token" not in page.url  # removed from the address bar
            await produce_ward(settings, patients=14, worse=(3, 8), medium=(5,), red=(10, 12))
            item = page.locator(f'#feed-list li[data-alert-id="{want}"]')
            await item.locator("button.ack").wait_for(timeout=120000)
            await page.wait_for_selector("#twins tbody tr.band-high", timeout=30000)
            await page.fill("#staff", "rn-4411")
            await item.locator("button.ack").click()
            await page.wait_for_selector(f'#feed-list li.acked[data-alert-id="{want}"]')
            SCREENSHOT.parent.mkdir(exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT))
            await page.click('tr[data-patient="p-0003"]')
            await page.wait_for_selector("#p-charts .uplot", timeout=15000)
            assert await page.locator("#p-band").inner_text() == "NEWS2 10 \u00b7 high"
            await browser.close()
        assert errors == []
        acks = await read_topic(settings, settings.topic_alert_acks, want=1)
        assert [(k, orjson.loads(v)["alert_id"], orjson.loads(v)["by"]) for k, v in acks] == [
            (b"p-0003", want, "rn-4411")
        ]
    finally:
        await asyncio.to_thread(stop_process, worker)
        await asyncio.to_thread(stop_process, api)
