"""The studio page in a real browser: Playwright for Python driving Debian's chromium (no browser download).

Skips cleanly where Playwright or chromium is missing. Screenshots at desktop and phone widths go to the
test's folder, and to ``out/`` beside the tests where that folder exists (a development checkout).
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from conftest import make_content, make_style
from PIL import Image
from test_studio import config, live_server

from stylecraft import TransferConfig
from stylecraft.feedforward import styles

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUT = Path(__file__).resolve().parents[1] / "out"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")

# Records every text the live panel's status line shows and whether a preview image appeared, so that the
# test sees progress even when a tiny job finishes between two polls.
WATCH = """() => {
  window.seen = {states: [], preview: false};
  new MutationObserver(() => {
    const line = document.querySelector('#live-state');
    if (line && window.seen.states[window.seen.states.length - 1] !== line.textContent) {
      window.seen.states.push(line.textContent);
    }
    if (document.querySelector('#live-image.preview')) window.seen.preview = true;
  }).observe(document.querySelector('#live'), {subtree: true, childList: true, characterData: true,
                                               attributes: true});
}"""


# Drops a file on the style drop zone as a user dragging it from their desktop would.
DROP = """([data, name]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type: 'image/png'}));
  document.querySelector('#style-drop').dispatchEvent(
    new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
}"""


def _keep(path: Path) -> None:
    if OUT.is_dir():
        shutil.copy(path, OUT / path.name)


def _refusals(page: sync_api.Page) -> list[str]:
    """What the page's Content-Security-Policy refuses, as the browser reports it (kept up to date)."""
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text
            else None)
    return refused


def test_page_end_to_end_at_desktop_and_phone_widths(tmp_path: Path) -> None:
    photo, painting, text = tmp_path / "photo.jpg", tmp_path / "painting.png", tmp_path / "notes.png"
    make_content(160, 120).save(photo, quality=95)
    make_style(128, 128).save(painting)
    text.write_text("not a picture")

    with live_server(config(tmp_path, preview_every=2)) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            desktop = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            refused = _refusals(desktop)
            desktop.goto(url)
            expect = sync_api.expect
            expect(desktop.locator("#gallery .empty")).to_contain_text("Your pictures will appear here")
            expect(desktop.locator("#start")).to_be_disabled()
            expect(desktop.locator("#status")).to_contain_text("Ready")

            desktop.set_input_files("#content-input", str(text))  # refused by content, shown to the user
            expect(desktop.locator("#toast")).to_contain_text("notes.png: not an image file")
            expect(desktop.locator("#content-thumbs .thumb")).to_have_count(0)

            desktop.set_input_files("#content-input", str(photo))  # the file picker
            desktop.evaluate(DROP, [base64.b64encode(painting.read_bytes()).decode(), painting.name])
            expect(desktop.locator("#content-thumbs .thumb:not(.loading) img")).to_have_count(1)
            expect(desktop.locator("#style-thumbs .thumb:not(.loading) img")).to_have_count(1)
            expect(desktop.locator("#toast")).to_be_hidden()  # a good upload clears the last error
            desktop.click("#presets button:has-text('Draft')")  # a preset fills the size and the iterations
            draft = TransferConfig().with_preset("draft")
            assert (desktop.input_value("#size"), desktop.input_value("#iterations")) == (str(draft.size),
                                                                                          str(draft.iterations))
            desktop.fill("#size", "64")
            desktop.fill("#iterations", "20")
            expect(desktop.locator("#start")).to_be_enabled()
            desktop.evaluate(WATCH)
            desktop.click("#start")

            result = desktop.locator("#live-image.result")
            expect(result).to_be_visible(timeout=120_000)
            expect(desktop.locator("#live .badge")).to_have_text("done")
            seen = desktop.evaluate("window.seen")
            progress = [s for s in seen["states"] if s.startswith("Iteration ") and not s.startswith("Iteration 0")]
            assert progress and progress[-1] == "Iteration 20 of 20", seen
            assert seen["preview"], seen
            assert desktop.evaluate("document.querySelector('#live-image').naturalWidth") == 64
            expect(desktop.locator("#gallery article[data-state=done]")).to_have_count(1)

            with desktop.expect_download() as download:
                desktop.click("#live a.download")
            saved = tmp_path / "downloaded.png"
            download.value.save_as(saved)
            assert download.value.suggested_filename.startswith("stylecraft-")
            assert Image.open(saved).size == (64, 48)

            desktop.evaluate("window.scrollTo(0, 0)")
            desktop.screenshot(path=tmp_path / "studio-desktop.png", full_page=True)
            _keep(tmp_path / "studio-desktop.png")

            # Re-run with tweaks: the same pictures come back into the form; a long run, watched, then cancelled.
            desktop.click("#live button:has-text('Re-run with tweaks')")
            expect(desktop.locator("#content-thumbs .thumb")).to_have_count(1)
            expect(desktop.locator("#style-thumbs .thumb")).to_have_count(1)
            assert desktop.input_value("#size") == "64"
            desktop.fill("#iterations", "2000")
            desktop.click("#start")
            expect(desktop.locator("#live-image.preview")).to_be_visible(timeout=60_000)
            expect(desktop.locator("#live .badge")).to_have_text("running")
            desktop.evaluate("window.scrollTo(0, 0)")
            desktop.screenshot(path=tmp_path / "studio-running.png", full_page=True)
            _keep(tmp_path / "studio-running.png")
            desktop.click("#live button:has-text('Cancel')")
            expect(desktop.locator("#live .badge")).to_have_text("cancelled", timeout=30_000)
            expect(desktop.locator("#live")).to_contain_text("the picture so far is kept")
            expect(desktop.locator("#gallery article")).to_have_count(2)

            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                     has_touch=True)
            phone.goto(url)
            expect(phone.locator("#gallery article")).to_have_count(2)
            expect(phone.locator("#live-image.result")).to_be_visible()
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing spills sideways
            phone.screenshot(path=tmp_path / "studio-phone.png", full_page=True)
            _keep(tmp_path / "studio-phone.png")
            assert refused == []
        finally:
            browser.close()


def test_the_locked_page_keeps_its_style_under_the_policy(tmp_path: Path) -> None:
    with live_server(config(tmp_path, token="correct-horse-battery", host="0.0.0.0")) as url, \
            sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            refused = _refusals(page)
            assert page.goto(url).status == 401
            assert "system-ui" in page.evaluate("getComputedStyle(document.body).fontFamily")
            assert refused == []
        finally:
            browser.close()


def test_a_video_is_painted_and_plays_in_the_page(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    from test_video import make_clip  # noqa: PLC0415 - needs PyAV, checked above

    from stylecraft.feedforward import TransformerNet, save_model  # noqa: PLC0415

    assert av
    models = tmp_path / "models"
    models.mkdir()
    save_model(TransformerNet(width=4, residual_blocks=1), models / "tiny.pt", {"style": "stripes"})
    clip = make_clip(tmp_path / "clip.mp4")
    with live_server(config(tmp_path, models=models)) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            expect = sync_api.expect
            page.set_input_files("#content-input", str(clip))
            expect(page.locator("#content-thumbs .thumb:not(.loading) img")).to_have_count(1, timeout=30_000)
            expect(page.locator("#start")).to_be_disabled()  # the optimiser does not take videos here
            expect(page.locator("#start-hint")).to_contain_text("real-time model")
            page.check("input[name=method][value=model]")
            page.fill("#size", "64")
            expect(page.locator("#start")).to_be_enabled()
            page.click("#start")
            video = page.locator("#live-video.result")
            expect(video).to_be_visible(timeout=120_000)
            expect(page.locator("#live .badge")).to_have_text("done")
            page.wait_for_function("document.querySelector('#live-video').readyState >= 1", timeout=30_000)
            assert page.evaluate("document.querySelector('#live-video').duration") == pytest.approx(2.0, abs=0.1)
            assert page.evaluate("document.querySelector('#live-video').videoWidth") == 64
            page.screenshot(path=tmp_path / "studio-video.png")
            _keep(tmp_path / "studio-video.png")
        finally:
            browser.close()


@pytest.mark.skipif(not styles.builtin_file().is_file(), reason="no built-in styles in this tree")
def test_a_built_in_style_previews_and_paints_the_photo(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    make_content(320, 240).save(photo, quality=95)
    known = styles.records(styles.load_builtin())
    first, title = known[0]["name"], known[0]["title"]
    with live_server(config(tmp_path)) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            refused = _refusals(page)
            page.goto(url)
            expect = sync_api.expect
            cards = page.locator("#style-row .style-card")
            expect(cards).to_have_count(len(known))  # the paintings, before any photo
            expect(page.locator("#style-row .preview")).to_have_count(0)
            page.fill("#iterations", "4")  # for "Paint finely" below
            page.set_input_files("#content-input", str(photo))
            expect(page.locator("#style-row .preview.ready img")).to_have_count(len(known), timeout=60_000)
            assert page.evaluate("document.querySelector('#style-row .preview img').naturalWidth") == 320
            expect(page.locator("#fine")).to_be_hidden()

            page.click(f"#style-row .style-card[data-style='{first}']")
            expect(page.locator(f".style-card[data-style='{first}']")).to_have_attribute("aria-pressed", "true")
            assert page.input_value("#model") == first
            page.fill("#size", "64")
            page.click("#start")
            expect(page.locator("#live-image.result")).to_be_visible(timeout=60_000)
            expect(page.locator("#live .job-title")).to_contain_text(title)
            assert page.evaluate("document.querySelector('#live-image').naturalWidth") == 64
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=tmp_path / "studio-styles-desktop.png", full_page=True)
            _keep(tmp_path / "studio-styles-desktop.png")

            page.click("#fine")  # the painting, to the optimiser
            expect(page.locator("#gallery article")).to_have_count(2)
            expect(page.locator("#live .job-title")).to_contain_text(f"photo.jpg × {title}")
            expect(page.locator("#live-image.result")).to_be_visible(timeout=120_000)
            expect(page.locator("#live .badge")).to_have_text("done")

            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                     has_touch=True)
            refused_on_phone = _refusals(phone)
            phone.goto(url)
            phone.set_input_files("#content-input", str(photo))
            expect(phone.locator("#style-row .preview.ready img")).to_have_count(len(known), timeout=60_000)
            phone.click(f"#style-row .style-card[data-style='{known[-1]['name']}']")
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing spills sideways
            phone.screenshot(path=tmp_path / "studio-styles-phone.png", full_page=True)
            _keep(tmp_path / "studio-styles-phone.png")
            assert refused == refused_on_phone == []
        finally:
            browser.close()
