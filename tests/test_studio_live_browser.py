"""The live camera page in a real browser: Debian's chromium with its fake camera playing an MJPEG file that
Pillow writes here, at desktop and phone sizes. Skips cleanly where Playwright or chromium is missing.

Screenshots go to the test's folder, and to ``out/`` beside the tests where that folder exists.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_content
from PIL import Image
from test_studio import config, live_server

from stylecraft.feedforward import styles

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("websockets")
CHROMIUM = shutil.which("chromium")
OUT = Path(__file__).resolve().parents[1] / "out"
SIZE = (640, 360)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")


def write_camera(path: Path, frames: int = 30) -> list[Image.Image]:
    """An MJPEG file for chromium's fake camera (JPEG frames one after another): a scene panning slowly.
    Returns the frames."""
    wide = make_content(SIZE[0] + frames * 4, SIZE[1])
    pictures = [wide.crop((i * 4, 0, i * 4 + SIZE[0], SIZE[1])) for i in range(frames)]
    with path.open("wb") as file:
        for picture in pictures:
            picture.save(file, format="JPEG", quality=90)
    return pictures


def camera_flags(camera: Path) -> list[str]:
    """Chromium's flags for a headless run whose camera plays ``camera`` and is allowed without asking."""
    return ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={camera}"]


def _keep(path: Path) -> None:
    if OUT.is_dir():
        shutil.copy(path, OUT / path.name)


def _shown(page: sync_api.Page) -> Image.Image:
    """What the page's painted view shows, as a picture."""
    data = page.evaluate("document.querySelector('#painted').toDataURL('image/png')")
    return Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))).convert("RGB")


@pytest.mark.parametrize(("name", "viewport", "mobile"), [("desktop", {"width": 1280, "height": 860}, False),
                                                          ("phone", {"width": 390, "height": 844}, True)])
def test_the_painted_camera_arrives_and_is_shown(tmp_path: Path, name: str, viewport: dict[str, int],
                                                 mobile: bool) -> None:
    camera = tmp_path / "camera.mjpeg"
    frames = write_camera(camera)
    with live_server(config(tmp_path, live_backend="torch")) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=camera_flags(camera))
        try:
            page = browser.new_page(viewport=viewport, is_mobile=mobile, has_touch=mobile)
            refused: list[str] = []
            page.on("console", lambda message: refused.append(message.text)
                    if "Content Security Policy" in message.text else None)
            page.goto(f"{url}/live")
            page.select_option("#size", "320x180")  # the quickest size: these cores are shared
            expect = sync_api.expect
            expect(page.locator("#painted")).to_have_attribute("data-frames", re.compile(r"^([3-9]|\d\d+)$"),
                                                               timeout=180_000)
            expect(page.locator("#status-text")).to_have_text("Live")
            expect(page.locator("#fps")).to_have_text(re.compile(r"^\d+\.\d fps$"))
            expect(page.locator("#snapshot")).to_be_enabled()
            stats = page.evaluate("window.liveStats.frames")
            width = page.evaluate("document.documentElement.scrollWidth")
            shown = _shown(page)
            page.screenshot(path=str(tmp_path / f"live-{name}.png"))
            _keep(tmp_path / f"live-{name}.png")
            if not mobile:  # snapshots: the frame at the camera's full size into the gallery, then to the optimiser
                for button in ("#snapshot", "#refine"):
                    page.click(button)
                    expect(page.locator("#snapshot-state")).to_contain_text("Snapshot queued")
                    page.evaluate("document.querySelector('#snapshot-state').textContent = ''")
                jobs = page.evaluate("async () => (await fetch('/api/jobs')).json()")
        finally:
            browser.close()
    assert refused == [] and width <= viewport["width"]  # nothing wider than the screen
    assert [frame["seq"] for frame in stats] == sorted({frame["seq"] for frame in stats})  # each answered once
    stages = ("decode_ms", "network_ms", "steady_ms", "encode_ms")
    assert all(frame["network_ms"] > 0 and frame["rtt_ms"] >= sum(frame[stage] for stage in stages)
               for frame in stats)  # the round trip of each frame holds the studio's work on it
    assert shown.size == (320, 180)
    if not mobile:
        by_method = {job["options"]["method"]: job for job in jobs}
        assert by_method["model"]["options"]["model"] == styles.names(styles.load_builtin())[0]
        assert by_method["model"]["options"]["size"] == SIZE[0]  # the camera's full size, not the live view's
        assert len(by_method["optimise"]["styles"]) == 1
    # painted: far from every camera frame, mirrored as the page sends them, and not a blank canvas
    pixels = np.asarray(shown, dtype=np.float32)
    for frame in frames:
        photo = np.asarray(frame.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((320, 180)), dtype=np.float32)
        assert np.abs(pixels - photo).mean() > 20
    assert pixels.std() > 20


def test_off_a_secure_context_the_page_says_why_there_is_no_camera(tmp_path: Path) -> None:
    camera = tmp_path / "camera.mjpeg"
    write_camera(camera, frames=2)
    with live_server(config(tmp_path)) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=camera_flags(camera))
        try:
            page = browser.new_page()
            # as a page served on another address than localhost, over http, is
            page.add_init_script("Object.defineProperty(window, 'isSecureContext', {value: false})")
            page.goto(f"{url}/live")
            notice = page.locator("#notice")
            sync_api.expect(notice).to_be_visible()
            text = notice.inner_text()
            page.screenshot(path=str(tmp_path / "live-insecure.png"))
            _keep(tmp_path / "live-insecure.png")
        finally:
            browser.close()
    assert "The camera is not available on this address." in text
    assert "--host 127.0.0.1" in text and "--certfile" in text and "--keyfile" in text


def test_below_8_frames_a_second_the_page_asks_for_a_smaller_size(tmp_path: Path) -> None:
    camera = tmp_path / "camera.mjpeg"
    write_camera(camera, frames=4)
    with live_server(config(tmp_path, live_backend="torch")) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=camera_flags(camera))
        try:
            page = browser.new_page()
            page.clock.install()
            page.goto(f"{url}/live")
            painted, slow = page.locator("#painted"), page.locator("#slow")

            def frames() -> int:
                return int(painted.get_attribute("data-frames") or 0)

            def a_slow_frame() -> str:
                """The page's clock jumps 5 s, then a frame is painted: the page sees under 1 frame a second,
                however fast this machine paints."""
                before, deadline = frames(), time.monotonic() + 120
                page.clock.fast_forward(5000)
                while frames() <= before:
                    assert time.monotonic() < deadline, "no frame painted in 2 minutes"
                    time.sleep(0.02)
                sync_api.expect(slow).to_be_visible()
                return slow.inner_text()

            sync_api.expect(painted).to_have_attribute("data-frames", re.compile(r"^[1-9]"), timeout=120_000)
            page.clock.pause_at(page.evaluate("Date.now()") + 1000)  # the page's time moves only when told
            at_640 = a_slow_frame()
            page.select_option("#size", "320x180")
            at_smallest = a_slow_frame()
        finally:
            browser.close()
    assert "under 8 frames a second" in at_640 and "choose a smaller size" in at_640
    assert "even at the smallest size" in at_smallest and 'pip install "stylecraft[openvino]"' in at_smallest
