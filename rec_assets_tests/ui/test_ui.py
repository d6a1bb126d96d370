"""The Dagster UI as a user sees it, in headless Chromium (Debian's, driven by Playwright).

A tiny week is materialised the way `make run` does it (``python -m rec_assets.cli run``, recorded in a
persistent instance), then `make ui` (``dg dev``) starts on it, on 127.0.0.1 and a free port. The test opens
the global asset graph and finds every asset of the code location there, then opens ``evaluation_metrics``
and checks that its Table 1 and Table 2 markdown render as tables and its attention figure renders as an image.
Screenshots go to ``test-artifacts/ui/``. About 3-4 minutes on two cores (the materialisation is most of it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from rec_assets.definitions import build_definitions
from rec_assets_tests.ui.server import ARTIFACTS, PROJECT_ROOT, dagster_ui

defs = build_definitions()

pytestmark = pytest.mark.timeout(1500)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SHOTS = ARTIFACTS / "ui"
MATERIALISE_TIMEOUT_S = 1200
UI_TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1680, "height": 1050}
GRAPH_HEIGHT = 4000

ASSET_NAMES = sorted(key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys())
GROUPS = sorted({node.group_name for node in defs.resolve_asset_graph().asset_nodes})


@pytest.fixture(scope="module")
def ui_env(tmp_path_factory) -> dict[str, str]:
    """A fresh REC_HOME with the latest tiny week materialised through `make run`'s code path."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium chromium-driver (as .ci/run does)")
    home = tmp_path_factory.mktemp("ui_rec_home")
    env = {**os.environ, "REC_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home"),
           "REC_SIM_PRESET": "tiny"}
    for name in ("REC_DUCKDB", "REC_ARTIFACTS"):
        env.pop(name, None)
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "rec_assets.cli", "run"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=MATERIALISE_TIMEOUT_S)
    (SHOTS / "make_run.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    print(f"materialised the tiny week in {time.monotonic() - started:.0f} s")
    return env


@pytest.fixture(scope="module")
def page(ui_env):
    from playwright.sync_api import sync_playwright

    with dagster_ui(ui_env, SHOTS / "dg_dev.log") as ui, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(UI_TIMEOUT_MS)
            page = context.new_page()
            page.base_url = ui.url
            yield page
        finally:
            browser.close()


def _open_graph_with_every_group_expanded(page, nodes: int) -> None:
    """Groups start collapsed; the page's `expanded` query parameter opens them all at once (clicking each unfold
    button in turn misses the ones the growing graph pushed out of view). The graph renders only the nodes in
    view, so the page is made tall enough for this tall graph (a column of ten tower checkpoints) to fit at a
    scale where nodes still carry names. Every wait is on what the page shows, never a fixed pause."""
    expanded = ",".join(f"global@global:{group}" for group in GROUPS)
    page.set_viewport_size({"width": 1680, "height": GRAPH_HEIGHT})
    page.goto(page.base_url + "/asset-groups?" + urlencode({"expanded": expanded}))
    page.wait_for_load_state("networkidle")
    page.wait_for_function("n => document.querySelectorAll('foreignObject [class*=assetName]').length >= n",
                           arg=nodes)


def _graph_node_names(page) -> list[str]:
    """The names on the graph's asset nodes; zoomed out, a long name is middle-truncated ("title_…_embeddings")."""
    names = page.locator("foreignObject [class*=assetName]").evaluate_all("els => els.map(e => e.textContent)")
    return [name.strip() for name in names]


def _shown_as(name: str, shown: str) -> bool:
    if "…" not in shown:
        return shown == name
    head, tail = shown.split("…", 1)
    return name.startswith(head) and name.endswith(tail) and len(head) + len(tail) < len(name)


def test_the_asset_graph_shows_every_asset(page):
    page.goto(page.base_url + "/asset-groups")
    page.wait_for_load_state("networkidle")
    page.get_by_text("Global asset lineage").first.wait_for()
    page.screenshot(path=SHOTS / "01_asset_graph_groups.png")
    _open_graph_with_every_group_expanded(page, len(ASSET_NAMES))
    page.screenshot(path=SHOTS / "02_asset_graph_expanded.png")
    shown = _graph_node_names(page)
    page.set_viewport_size(VIEWPORT)
    assert len(shown) == len(ASSET_NAMES), shown
    # Match names to nodes one to one (a truncated label could fit several names: try the exact ones first).
    unmatched = list(shown)
    for name in sorted(ASSET_NAMES, key=lambda n: (n not in unmatched, n)):
        node = next((s for s in unmatched if _shown_as(name, s)), None)
        assert node is not None, f"{name} is not in the graph: {shown}"
        unmatched.remove(node)


def _open_markdown(page, key: str):
    """The asset's latest materialisation lists each markdown entry as "[Show Markdown]"; open one."""
    row = page.locator("tr").filter(has=page.get_by_text(key, exact=True)).first
    row.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    return dialog


def _close(page, dialog) -> None:
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")


def test_the_evaluation_asset_renders_its_tables_and_figure(page):
    page.goto(page.base_url + "/assets/evaluation_metrics?view=events")
    page.wait_for_load_state("networkidle")
    page.get_by_text("table_1_warm", exact=True).first.wait_for()
    page.screenshot(path=SHOTS / "03_evaluation_metrics_events.png", full_page=True)

    for key, shot, words in (
        ("table_1_warm", "04_table_1_warm.png", ("P@6", "R@6", "ConCov@6", "Synopsis (B)", "Att (w/ ID)")),
        ("table_2_cold_start", "05_table_2_cold_start.png", ("P@6", "R@6", "Random")),
    ):
        dialog = _open_markdown(page, key)
        table = dialog.locator("table").first
        table.wait_for()
        text = table.inner_text()
        assert all(word.lower() in text.lower() for word in words), text
        assert table.locator("tr").count() > 3
        dialog.screenshot(path=SHOTS / shot)
        _close(page, dialog)

    dialog = _open_markdown(page, "figure_4_attention")
    image = dialog.locator("img[src^='data:image/png']").first
    image.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=image.element_handle())
    dialog.screenshot(path=SHOTS / "06_figure_4_attention.png")
    _close(page, dialog)
