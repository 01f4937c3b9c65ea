"""Debian's Chromium, headless, driven by Playwright: the launcher the browser tests share.

``chromium()`` starts ``/usr/bin/chromium`` (Debian's package, never a downloaded browser)
with a fresh profile and every network feature of the browser itself off (no background
requests, updates, sync or QUIC). tests/browser/ (JupyterLab) and tests/test_site.py (the
course website) open their pages in it.
"""

import contextlib
import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"  # Debian's package: `apt-get install -y chromium`
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1000):
    """A headless Chromium page (fresh profile, no network features), closed on exit."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    profile = tempfile.mkdtemp(prefix="course-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": width, "height": height},
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
