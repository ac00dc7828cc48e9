"""The studio page in a real browser: Playwright for Python driving Debian's chromium (no browser download).

Skips cleanly where Playwright or chromium is missing. Screenshots at desktop and phone widths go to the
test's folder, and to ``out/`` beside the tests where that folder exists (a development checkout).
"""

from __future__ import annotations

import base64
import io
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
            expect(desktop.locator("#live-time")).to_contain_text(" left")  # the time so far, and the time to go
            expect(desktop.locator("#start-hint")).to_have_text("1 job painting now: a new job waits its turn.")
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
            assert page.input_value("#size") == ""  # a model keeps the photo's size unless asked, as `apply`
            page.click("#start")
            expect(page.locator("#live-image.result")).to_be_visible(timeout=60_000)
            expect(page.locator("#live .job-title")).to_contain_text(title)
            assert page.evaluate("document.querySelector('#live-image').naturalWidth") == 320
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=tmp_path / "studio-styles-desktop.png", full_page=True)
            _keep(tmp_path / "studio-styles-desktop.png")

            page.fill("#size", "64")
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
            clipped = phone.locator("#style-row .caption b").evaluate_all(
                "(titles) => titles.filter((t) => t.scrollHeight > t.clientHeight || t.scrollWidth > t.clientWidth)"
                ".map((t) => t.textContent)")
            assert clipped == [], clipped  # every title whole, "Udnie (Young American Girl, The Dance)" too
            phone.evaluate("window.scrollTo(0, 0)")  # scrolled by the click, a full-page shot loses the sticky menu
            phone.screenshot(path=tmp_path / "studio-styles-phone.png", full_page=True)
            _keep(tmp_path / "studio-styles-phone.png")
            assert refused == refused_on_phone == []
        finally:
            browser.close()


def _drag(page: sync_api.Page, box: dict[str, float], start: tuple[float, float], end: tuple[float, float]) -> None:
    """A mouse stroke across the canvas ``box`` between two points given as fractions of it."""
    page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
    page.mouse.down()
    for step in range(1, 9):
        page.mouse.move(box["x"] + (start[0] + (end[0] - start[0]) * step / 8) * box["width"],
                        box["y"] + (start[1] + (end[1] - start[1]) * step / 8) * box["height"])
    page.mouse.up()


# The canvas's colour at fractions (x, y) of it, as [r, g, b, a].
PIXEL = """([x, y]) => {
  const canvas = document.querySelector('#paint');
  const [left, top] = [Math.floor(x * canvas.width), Math.floor(y * canvas.height)];
  return [...canvas.getContext('2d').getImageData(left, top, 1, 1).data];
}"""


def _inside(page: sync_api.Page, selector: str, width: int) -> None:
    """Every element that ``selector`` finds lies within the page's ``width``."""
    for box in page.locator(selector).evaluate_all("(nodes) => nodes.map((n) => n.getBoundingClientRect().toJSON())"):
        assert box["left"] >= 0 and box["right"] <= width, (selector, box)


def test_regions_are_painted_with_the_brush_over_the_photo_and_each_takes_its_painting(tmp_path: Path) -> None:
    from stylecraft.studio.regions import BACKGROUND, BRUSHES  # noqa: PLC0415 - needs the studio's extras

    photo, painting = tmp_path / "photo.jpg", tmp_path / "painting.png"
    make_content(160, 120).save(photo, quality=95)
    make_style(128, 128).save(painting)
    red, green = (tuple(int(BRUSHES[name][i:i + 2], 16) for i in (1, 3, 5)) for name in ("red", "green"))
    builtin = styles.records(styles.load_builtin())[0] if styles.builtin_file().is_file() else None
    with live_server(config(tmp_path)) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            expect = sync_api.expect
            desktop = browser.new_page(viewport={"width": 1280, "height": 900})
            refused = _refusals(desktop)
            desktop.goto(url)
            desktop.check("input[name=method][value=regions]")
            expect(desktop.locator("#brush-panel")).to_be_hidden()  # nothing to paint on before a photo
            desktop.set_input_files("#content-input", str(photo))
            desktop.set_input_files("#style-input", str(painting))
            expect(desktop.locator("#style-thumbs .thumb:not(.loading) img")).to_have_count(1)
            expect(desktop.locator("#brush-panel")).to_be_visible()
            desktop.wait_for_function("() => document.querySelector('#paint').width === 160")  # the photo's shape
            expect(desktop.locator("#start-hint")).to_have_text("Paint a region over the photo.")

            box = desktop.locator("#paint").bounding_box()
            assert box is not None
            desktop.click("#swatches [data-brush=red]")
            _drag(desktop, box, (0.1, 0.2), (0.35, 0.8))
            desktop.click("#swatches [data-brush=green]")
            _drag(desktop, box, (0.9, 0.2), (0.65, 0.8))
            desktop.click("#eraser")  # the eraser takes paint away
            _drag(desktop, box, (0.1, 0.2), (0.12, 0.22))
            assert desktop.evaluate(PIXEL, [0.1, 0.2])[3] == 0
            assert desktop.evaluate(PIXEL, [0.225, 0.5]) == [*red, 255]
            assert desktop.evaluate(PIXEL, [0.775, 0.5]) == [*green, 255]
            assert desktop.evaluate(PIXEL, [0.5, 0.5])[3] == 0  # unpainted: the photo stays there
            expect(desktop.locator("#start-hint")).to_have_text("Choose a painting for the red region.")
            expect(desktop.locator("#start")).to_be_disabled()

            desktop.select_option("select[data-brush=red]", f"builtin:{builtin['name']}" if builtin
                                  else f"upload:{desktop.evaluate('state.styles[0].id')}")
            desktop.select_option("select[data-brush=green]", label="painting.png")
            desktop.fill("#size", "64")
            desktop.fill("#iterations", "4")
            expect(desktop.locator("#start")).to_be_enabled()
            desktop.evaluate("window.scrollTo(0, 0)")
            desktop.screenshot(path=tmp_path / "brush-desktop.png", full_page=True)
            _keep(tmp_path / "brush-desktop.png")
            desktop.click("#start")
            expect(desktop.locator("#live-image.result")).to_be_visible(timeout=120_000)
            expect(desktop.locator("#live .badge")).to_have_text("done")
            assert desktop.evaluate("document.querySelector('#live-image').naturalWidth") == 64
            expect(desktop.locator("#live")).to_contain_text("2 regions")

            job = desktop.evaluate("fetch('/api/jobs').then((r) => r.json())")[0]
            assert job["options"]["regions"]["colours"] == [BRUSHES["red"], BRUSHES["green"]]
            assert [s["name"] for s in job["styles"]] == [builtin["title"] if builtin else "painting.png",
                                                          "painting.png"]
            sent = desktop.evaluate("""(id) => fetch(`/api/uploads/${id}/image`).then((r) => r.arrayBuffer())
                                         .then((b) => btoa(String.fromCharCode(...new Uint8Array(b))))""",
                                    job["options"]["regions"]["map"])
            region_map = Image.open(io.BytesIO(base64.b64decode(sent)))
            assert region_map.size == (160, 120)
            assert region_map.getpixel((36, 60)) == red and region_map.getpixel((124, 60)) == green
            assert region_map.getpixel((80, 60)) == Image.new("RGB", (1, 1), BACKGROUND).getpixel((0, 0))

            desktop.click("#live button:has-text('Re-run with tweaks')")  # the map comes back on the canvas
            expect(desktop.locator("input[name=method][value=regions]")).to_be_checked()
            expect(desktop.locator("#start")).to_be_enabled()
            assert desktop.evaluate(PIXEL, [0.225, 0.5]) == [*red, 255]
            assert desktop.evaluate(PIXEL, [0.5, 0.5])[3] == 0
            assert desktop.input_value("select[data-brush=green]") == f"upload:{job['styles'][1]['id']}"

            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                     has_touch=True)
            refused_on_phone = _refusals(phone)
            phone.goto(url)
            phone.check("input[name=method][value=regions]")
            phone.set_input_files("#content-input", str(photo))
            expect(phone.locator("#brush-panel")).to_be_visible()
            phone.wait_for_function("() => document.querySelector('#paint').width === 160")
            phone.locator("#brush-panel").scroll_into_view_if_needed()
            box = phone.locator("#paint").bounding_box()
            assert box is not None
            touch = phone.context.new_cdp_session(phone)  # a finger's stroke, as the phone's screen sends it
            points = [(box["x"] + box["width"] * (0.2 + 0.06 * i), box["y"] + box["height"] * 0.5) for i in range(11)]
            for kind, (x, y) in [("touchStart", points[0]), *(("touchMove", p) for p in points[1:]),
                                 ("touchEnd", points[-1])]:
                touch.send("Input.dispatchTouchEvent",
                           {"type": kind, "touchPoints": [] if kind == "touchEnd" else [{"x": x, "y": y}]})
            assert phone.evaluate(PIXEL, [0.5, 0.5]) == [*red, 255]
            expect(phone.locator("#start-hint")).to_have_text("Choose a painting for the red region.")
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing spills sideways
            _inside(phone, "#brush-panel, #brush-panel button, #brush-panel input, #brush-panel select, #paint", 390)
            panel = phone.locator("#regions-pane").bounding_box()  # with the card's margin around it
            assert panel is not None
            phone.screenshot(path=tmp_path / "brush-phone.png", clip={"x": 0, "y": panel["y"] - 12, "width": 390,
                                                                       "height": panel["height"] + 24})
            _keep(tmp_path / "brush-phone.png")
            phone.screenshot(path=tmp_path / "studio-regions-phone.png", full_page=True)
            _keep(tmp_path / "studio-regions-phone.png")
            assert refused == refused_on_phone == []
        finally:
            browser.close()
