"""Faults found by trying to break the studio (issue 21, part 10), each pinned by a test: memory and disk under
large or failing uploads, jobs whose end cannot be recorded, limits that overflow, a damaged database, the token
in links and logs, jobs that could never run, and the headers and file modes that keep pictures private."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from stylecraft import cli
from stylecraft.errors import ConfigError
from stylecraft.studio import app as studio_app
from stylecraft.studio.config import StudioConfig

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402 - after the skip


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, ...]]:
    """`stylecraft serve` runs every check and prints its link, but serves nothing: the calls are recorded."""
    calls: list[tuple[object, ...]] = []

    def serve(*args: object, **kwargs: object) -> None:
        calls.append(args)
        for arg in args:
            if isinstance(arg, socket.socket):
                arg.close()

    monkeypatch.setattr(studio_app, "serve", serve)
    monkeypatch.delenv("STYLECRAFT_TOKEN", raising=False)
    return calls


# limits and the printed link -----------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["max_upload_mb", "max_video_mb", "max_storage_mb", "max_video_seconds",
                                    "keep_uploads_hours", "max_pixels", "max_video_pixels", "max_queue",
                                    "max_iterations"])
def test_limits_beyond_what_they_can_mean_are_refused(tmp_path: Path, option: str) -> None:
    with pytest.raises(ConfigError, match=option):
        StudioConfig(data=tmp_path, **{option: 10**300 if "pixels" in option or "max_i" in option or "queue" in
                                       option else 1e308})


@pytest.mark.parametrize("args", [["--max-upload-mb", "1e308"], ["--max-storage-mb", "1e308"], ["--port", "-1"],
                                  ["--port", "65536"], ["--max-pixels", "1" + "0" * 30]])
def test_serve_refuses_overflowing_options_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                       served: list[tuple[object, ...]], args: list[str]) -> None:
    """Before: 1e308 MB passed the check (then every request was a 500, or a traceback after the link), and
    port -1 exited 1."""
    assert cli.main(["serve", "--data", str(tmp_path / "data"), *args]) == 2
    err = capsys.readouterr().err
    assert served == [] and "open http" not in err and err.count("\n") == 1, err


def _printed_link(err: str) -> str:
    found = re.search(r"open (http://\S+)", err)
    assert found, err
    return found.group(1)


def test_port_0_prints_the_port_it_listens_on(tmp_path: Path, capsys: pytest.CaptureFixture,
                                              served: list[tuple[object, ...]]) -> None:
    assert cli.main(["serve", "--data", str(tmp_path / "data"), "--port", "0"]) == 0
    port = urlsplit(_printed_link(capsys.readouterr().err)).port
    assert port and port > 0 and len(served) == 1


def test_the_printed_link_carries_any_token_url_encoded(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                        served: list[tuple[object, ...]]) -> None:
    token = "a&b+c#d%e-long-enough"
    assert cli.main(["serve", "--data", str(tmp_path / "data"), "--host", "0.0.0.0", "--token", token,
                     "--port", "0"]) == 0
    link = urlsplit(_printed_link(capsys.readouterr().err))
    config = StudioConfig(data=tmp_path / "data2", device="cpu", host="0.0.0.0", token=token)
    with TestClient(studio_app.create_app(config), base_url="http://127.0.0.1") as client:
        assert client.get(f"{link.path}?{link.query}", follow_redirects=False).status_code == 303

