"""The live camera's WebSocket through the app: frames in, painted frames out, and what it refuses.

The built-in styles' network paints (torch, so that no export is made); frames are small JPEGs.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_content, make_style
from PIL import Image
from test_studio import BASE, studio, upload

from stylecraft import api, cli
from stylecraft.feedforward import styles

fastapi = pytest.importorskip("fastapi")
pytest.importorskip("websockets")
from starlette.websockets import WebSocketDisconnect  # noqa: E402 - after the skip

from stylecraft.studio import app as studio_app  # noqa: E402 - needs fastapi
from stylecraft.studio.live import JPEG_QUALITY, Painters  # noqa: E402 - needs fastapi

LIVE = "ws://127.0.0.1/api/live"
ORIGIN = {"origin": BASE}
TOKEN = "a-secret-token-for-tests"
FIRST_STYLE = styles.names(styles.load_builtin())[0]


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def answer(socket: Any) -> tuple[dict[str, Any], Image.Image]:
    """The next painted frame: its record and its picture (status and ready messages are passed over)."""
    while True:
        message = json.loads(socket.receive_text())
        assert message["type"] != "error", message
        if message["type"] == "frame":
            return message, Image.open(io.BytesIO(socket.receive_bytes()))


def close_of(socket: Any) -> tuple[int, str]:
    """The code and reason of the close the studio sends next, skipping its other messages."""
    while True:
        message = socket.receive()
        if message["type"] == "websocket.close":
            return message["code"], message.get("reason", "")


def test_a_jpeg_in_gives_the_painted_jpeg_out(tmp_path: Path) -> None:
    photo = make_content(96, 64)
    with studio(tmp_path, live_backend="torch") as client, client.websocket_connect(LIVE, headers=ORIGIN) as socket:
        socket.send_text(json.dumps({"style": FIRST_STYLE}))
        socket.send_bytes(jpeg(photo))
        record, painted = answer(socket)
    assert record["seq"] == 1 and painted.format == "JPEG" and painted.size == (96, 64)
    assert all(record[stage] >= 0 for stage in ("decode_ms", "network_ms", "steady_ms", "encode_ms"))
    # the first frame has nothing to be steadied against: it is the style's painting of the decoded frame, sent
    # as a JPEG of the live view's quality, in the network's own colours (the live view has no palette step)
    expected = api.apply_model(FIRST_STYLE, Image.open(io.BytesIO(jpeg(photo))), backend="torch", palette=False)
    expected_pixels = np.asarray(Image.open(io.BytesIO(jpeg(expected, JPEG_QUALITY))), dtype=np.float32)
    got = np.asarray(painted.convert("RGB"), dtype=np.float32)
    assert np.abs(got - expected_pixels).mean() < 1
    assert np.abs(got - np.asarray(photo, dtype=np.float32)).mean() > 20  # painted, not the photo sent back


def test_strength_zero_sends_the_photo_back(tmp_path: Path) -> None:
    photo = make_content(96, 64)
    with studio(tmp_path, live_backend="torch") as client, client.websocket_connect(LIVE, headers=ORIGIN) as socket:
        socket.send_text(json.dumps({"style": FIRST_STYLE, "strength": 0}))
        socket.send_bytes(jpeg(photo))
        _, painted = answer(socket)
    assert np.abs(np.asarray(painted.convert("RGB"), np.float32) - np.asarray(photo, np.float32)).mean() < 4


def test_an_uploaded_painting_paints_in_one_pass(tmp_path: Path) -> None:
    with studio(tmp_path) as client:
        painting = upload(client, make_style(96, 96))
        with client.websocket_connect(LIVE, headers=ORIGIN) as socket:
            socket.send_text(json.dumps({"style": f"upload:{painting}"}))
            ready = json.loads(socket.receive_text())
            while ready["type"] != "ready":
                ready = json.loads(socket.receive_text())
            socket.send_bytes(jpeg(make_content(64, 48)))
            _, painted = answer(socket)
    assert ready["backend"].startswith("one pass") and painted.size == (64, 48)


@pytest.mark.parametrize("headers", [{"origin": "http://evil.example"}, {}], ids=["other origin", "no origin"])
def test_another_origin_is_refused_before_the_socket_is_accepted(tmp_path: Path, headers: dict[str, str]) -> None:
    with studio(tmp_path) as client, pytest.raises(WebSocketDisconnect) as refused, \
            client.websocket_connect(LIVE, headers=headers):
        pass
    assert refused.value.code == 1008 and "studio's own page" in refused.value.reason


def test_a_missing_or_wrong_token_is_refused_and_the_right_one_accepted(tmp_path: Path) -> None:
    with studio(tmp_path, token=TOKEN, live_backend="torch") as client:
        with client.websocket_connect(LIVE, headers=ORIGIN) as socket:
            socket.send_bytes(jpeg(make_content()))
            assert close_of(socket) == (1008, "this studio needs its token: open the link that `stylecraft live` "
                                              "printed")
        with client.websocket_connect(LIVE, headers=ORIGIN) as socket:
            socket.send_text(json.dumps({"token": "not-the-token-at-all"}))
            assert close_of(socket)[0] == 1008
        with client.websocket_connect(LIVE, headers=ORIGIN) as socket:  # the token as the first message
            socket.send_text(json.dumps({"token": TOKEN}))
            socket.send_bytes(jpeg(make_content()))
            assert answer(socket)[0]["seq"] == 1
        # the page's way: its link sets the login cookie, which the socket's handshake carries; the token
        # itself is never in the socket's address
        assert client.get(f"/live?token={TOKEN}", follow_redirects=False).headers["location"] == "/live"
        cookie = client.cookies.get("stylecraft_token")
        with client.websocket_connect(LIVE, headers={**ORIGIN, "cookie": f"stylecraft_token={cookie}"}) as socket:
            socket.send_bytes(jpeg(make_content()))
            assert answer(socket)[0]["seq"] == 1


def test_an_oversized_frame_closes_the_socket_with_its_reason(tmp_path: Path) -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    with studio(tmp_path, max_live_frame_kb=1) as client, client.websocket_connect(LIVE, headers=ORIGIN) as socket:
        socket.send_bytes(jpeg(noise, quality=95))
        code, reason = close_of(socket)
    assert code == 1009 and "more than the limit of 1 KB" in reason


def test_a_frame_that_is_not_a_picture_closes_the_socket_with_its_reason(tmp_path: Path) -> None:
    with studio(tmp_path) as client:
        with client.websocket_connect(LIVE, headers=ORIGIN) as socket:
            socket.send_bytes(b"hello, not a picture")
            assert close_of(socket) == (1003, "frame 1 is not a JPEG or WebP picture")
        with client.websocket_connect(LIVE, headers=ORIGIN) as socket:  # a JPEG's start, then nothing
            socket.send_bytes(jpeg(make_content())[:40])
            code, reason = close_of(socket)
    assert code == 1003 and reason.startswith("frame 1: ")


def test_frames_beyond_the_rate_limit_close_the_socket(tmp_path: Path) -> None:
    with studio(tmp_path, max_live_fps=3) as client, client.websocket_connect(LIVE, headers=ORIGIN) as socket:
        for _ in range(5):
            socket.send_bytes(jpeg(make_content()))
        assert close_of(socket) == (1008, "more than 3 frames a second")


def test_a_refused_connection_ends_only_after_its_work_in_a_thread(tmp_path: Path, monkeypatch) -> None:
    """Before: a socket refused while its style loaded left the loading thread running, and one still inside
    OpenVINO when the process exited aborted it ("terminate called without an active exception")."""
    ended: list[str] = []
    load = Painters.load

    def slow_load(self: Painters, style: str) -> Any:
        threading.Event().wait(1.0)
        found = load(self, style)
        ended.append(style)
        return found

    monkeypatch.setattr(Painters, "load", slow_load)
    with studio(tmp_path, max_live_fps=3, live_backend="torch") as client, \
            client.websocket_connect(LIVE, headers=ORIGIN) as socket:
        for _ in range(5):
            socket.send_bytes(jpeg(make_content()))
        assert close_of(socket) == (1008, "more than 3 frames a second")
        assert ended == [FIRST_STYLE]


def test_a_burst_of_frames_is_answered_only_with_the_latest(tmp_path: Path) -> None:
    frames = [jpeg(make_content(320, 180).rotate(angle)) for angle in range(0, 50, 10)]
    with studio(tmp_path, live_backend="torch") as client, client.websocket_connect(LIVE, headers=ORIGIN) as socket:
        socket.send_text(json.dumps({"style": FIRST_STYLE}))
        for frame in frames:
            socket.send_bytes(frame)
        answered = [answer(socket)[0]["seq"]]
        while answered[-1] != len(frames):
            answered.append(answer(socket)[0]["seq"])
        socket.send_text(json.dumps({"strength": 2}))  # answered at once: nothing else was left to paint
        after = json.loads(socket.receive_text())
    # the frame being painted when the burst came may be answered; of the rest, only the latest
    assert answered in ([1, len(frames)], [len(frames)])
    assert after["type"] == "error" and after["error"].startswith("strength: ")


def test_one_live_connection_at_a_time(tmp_path: Path) -> None:
    with studio(tmp_path, live_backend="torch") as client, client.websocket_connect(LIVE, headers=ORIGIN) as first:
        first.send_bytes(jpeg(make_content()))
        answer(first)
        with client.websocket_connect(LIVE, headers=ORIGIN) as second:
            assert close_of(second) == (1008, "the live view is open in another tab or window; close it there first")
        first.send_bytes(jpeg(make_content()))
        assert answer(first)[0]["seq"] == 2


def test_an_unknown_style_is_said_and_the_socket_stays_open(tmp_path: Path) -> None:
    with studio(tmp_path, live_backend="torch") as client, client.websocket_connect(LIVE, headers=ORIGIN) as socket:
        socket.send_text(json.dumps({"style": "no-such-style"}))
        message = json.loads(socket.receive_text())
        while message["type"] == "status":
            message = json.loads(socket.receive_text())
        assert message["type"] == "error" and "no-such-style" in message["error"]
        socket.send_text(json.dumps({"style": FIRST_STYLE}))
        socket.send_bytes(jpeg(make_content()))
        assert answer(socket)[0]["seq"] == 1


def test_the_live_page_is_served_and_the_studio_menu_links_to_it(tmp_path: Path) -> None:
    with studio(tmp_path) as client:
        page = client.get("/live")
        assert page.status_code == 200 and 'src="/static/live.js"' in page.text
        assert 'href="/live"' in client.get("/").text
        assert client.get("/static/live.js").status_code == 200


def test_live_refuses_half_a_certificate_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    certificate = tmp_path / "cert.pem"
    certificate.write_text("not a certificate")
    assert cli.main(["live", "--no-browser", "--data", str(tmp_path / "d"), "--certfile", str(certificate)]) == 2
    assert capsys.readouterr().err.strip() == ("stylecraft: error: --certfile and --keyfile go together: HTTPS needs "
                                               "the certificate and its key")
    assert cli.main(["live", "--no-browser", "--port", "0", "--data", str(tmp_path / "d"), "--certfile",
                     str(certificate), "--keyfile", str(certificate)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("stylecraft: error: cannot serve HTTPS with") and "\n" not in error


def test_live_prints_the_link_to_its_page(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "stylecraft", "live", "--no-browser", "--port", "0",
                                "--data", str(tmp_path / "data"), "--token", TOKEN], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
    finally:
        process.terminate()
        process.wait(30)
    link = line.split("open ", 1)[1].split()[0]
    assert link.startswith("http://127.0.0.1:") and link.endswith(f"/live?token={TOKEN}")


def test_the_studio_sends_each_message_at_once() -> None:
    """The studio's connections have Nagle's algorithm off, as asyncio sets it where the listening socket names
    TCP. Before: it did not, and each painted frame waited about 40 ms behind its metadata message for a delayed
    acknowledgement (the live view's round trip at 320x180 lost a fifth of its frames to it)."""
    listening = studio_app._listen("127.0.0.1", 0)

    async def nodelay() -> int:
        found: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def accepted(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            found.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        async with await asyncio.start_server(accepted, sock=listening):
            _, writer = await asyncio.open_connection(*listening.getsockname()[:2])
            value = await asyncio.wait_for(found, 30)
            writer.close()
        return value

    assert asyncio.run(nodelay())
