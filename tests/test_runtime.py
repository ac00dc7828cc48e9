"""Where work runs (runtime.py): peak memory read portably."""

from __future__ import annotations

import sys

import pytest
import torch

from stylecraft import runtime
from stylecraft.runtime import Runtime


@pytest.mark.parametrize(("platform", "factor"), [("darwin", 1), ("linux", 1024), ("freebsd14", 1024)])
def test_maxrss_is_bytes_on_macos_and_kib_elsewhere(monkeypatch, platform, factor):
    monkeypatch.setattr(sys, "platform", platform)
    assert runtime.maxrss_bytes(3000) == 3000 * factor


def test_peak_memory_is_this_process_s_peak_rss():
    peak = Runtime(torch.device("cpu")).peak_memory_mb()
    assert peak is not None and 10 < peak < 2**20  # MiB: more than an empty interpreter, less than a TiB


def test_peak_memory_is_unknown_where_there_is_no_resource_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "resource", None)  # as on Windows: importing it fails
    assert runtime.peak_rss() is None
    assert Runtime(torch.device("cpu")).peak_memory_mb() is None
