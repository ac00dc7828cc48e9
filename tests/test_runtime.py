"""Where work runs (runtime.py): peak memory read portably; cuDNN's precision set only while stylecraft works."""

from __future__ import annotations

import dataclasses
import sys
import threading

import pytest
import torch
from conftest import CPU_HAS_BF16, make_content, make_style

import stylecraft
from stylecraft import api, runtime
from stylecraft.feedforward import TransformerNet
from stylecraft.feedforward.apply import stylise
from stylecraft.runtime import PRECISIONS, Runtime

CUDA = torch.device("cuda")  # setting cuDNN's flags needs no GPU, so the CUDA branch is tested on any machine


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


@pytest.fixture
def user_setting():
    """cuDNN's fp32 convolution precision as a user left it (TF32), and as it was after the test."""
    conv = torch.backends.cudnn.conv
    before = conv.fp32_precision
    conv.fp32_precision = "tf32"
    yield conv
    conv.fp32_precision = before


def test_resolving_a_runtime_leaves_cudnn_alone(user_setting):
    for precision in PRECISIONS:
        Runtime.resolve(CUDA, precision)
        Runtime.resolve("cpu", precision)
    assert user_setting.fp32_precision == "tf32"


def test_fp32_work_on_cuda_is_ieee_fp32_inside_and_the_user_s_setting_after(user_setting):
    # cuDNN computes fp32 convolutions in TF32 by default; the device check measured tiled and whole gradients
    # 2.4% apart on an H200 with it, 3e-7 without.
    with Runtime(CUDA, "fp32").work():
        assert user_setting.fp32_precision == "ieee"
        with Runtime(CUDA, "fp32").work():
            assert user_setting.fp32_precision == "ieee"
        assert user_setting.fp32_precision == "ieee"  # the outer run still works
    assert user_setting.fp32_precision == "tf32"
    with pytest.raises(RuntimeError), Runtime(CUDA, "fp32").work():
        raise RuntimeError("a failed run")
    assert user_setting.fp32_precision == "tf32"
    for other in (Runtime(CUDA, "bf16"), Runtime(torch.device("cpu"), "fp32")):  # reduced precision; no cuDNN
        with other.work():
            assert user_setting.fp32_precision == "tf32"


def test_overlapping_runs_in_threads_restore_the_setting_when_the_last_ends(user_setting):
    entered, release = threading.Event(), threading.Event()

    def other_run() -> None:
        with Runtime(CUDA).work():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other_run)
    with Runtime(CUDA).work():
        thread.start()
        assert entered.wait(10)
    assert user_setting.fp32_precision == "ieee"  # the other run is still at work
    release.set()
    thread.join()
    assert user_setting.fp32_precision == "tf32"


@pytest.fixture
def on_cuda(monkeypatch, user_setting):
    """Every runtime's work takes the CUDA branch (on the CPU), and every module's forward pass records the
    setting it ran under."""
    work = Runtime.work
    monkeypatch.setattr(Runtime, "work", lambda self: work(dataclasses.replace(self, device=CUDA)))
    seen: list[str] = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda *_: seen.append(user_setting.fp32_precision))
    yield seen
    hook.remove()


def test_transfer_training_and_applying_run_in_ieee_fp32_and_leave_the_setting(on_cuda, user_setting, tmp_path):
    stylecraft.run("transfer", make_content(32, 24), make_style(32, 32), size=32, iterations=2, device="cpu",
                   score=False)
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(2):
        make_content(48 + index, 40).save(photos / f"p{index}.png")
    make_style().save(tmp_path / "style.png")
    api.train_network(tmp_path / "style.png", photos, tmp_path / "m.pt", steps=1, size=32, loss_margin=0, batch_size=2,
                      network_width="compact", device="cpu")
    stylise(TransformerNet(8).eval(), torch.rand(1, 3, 20, 24))
    assert on_cuda and set(on_cuda) == {"ieee"}
    assert user_setting.fp32_precision == "tf32"


def test_cpu_flags_come_from_cpuinfo_and_none_without_it(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: a Xeon\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\n\n"
                    "processor\t: 1\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert runtime.cpu_flags(str(info)) == {"fpu", "avx512f", "avx512_bf16", "amx_tile"}
    assert runtime.cpu_flags(str(tmp_path / "missing")) == frozenset()


@pytest.mark.parametrize(("flags", "native"), [({"avx2", "avx512f"}, False), ({"avx512f", "avx512_bf16"}, True),
                                              ({"amx_tile", "amx_bf16"}, True), (set(), False)])
def test_a_cpu_has_bf16_by_its_flags(monkeypatch, flags, native):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset(flags))
    assert CPU_HAS_BF16() is native


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_for_the_optimiser_on_a_cpu_with_native_bf16(monkeypatch, native):
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: native)
    assert Runtime.resolve("cpu", "auto", cpu_bf16=True).precision == ("bf16" if native else "fp32")
    assert Runtime.resolve("cpu", "auto").precision == "fp32"  # training and the others keep fp32
    for explicit in ("fp32", "bf16"):  # a precision asked for is the one used, on any CPU
        assert Runtime.resolve("cpu", explicit, cpu_bf16=True).precision == explicit
    assert Runtime.resolve(CUDA, "auto").precision == "bf16"


def test_a_bf16_transfer_scores_as_the_fp32_one_and_auto_picks_it_where_the_cpu_has_bf16(monkeypatch):
    photo, painting = make_content(96, 72), make_style(96, 96)
    options = {"size": 96, "iterations": 40, "seed": 2}
    fp32 = api.run("transfer", photo, painting, precision="fp32", **options)
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: True)
    bf16 = api.run("transfer", photo, painting, **options)
    assert (fp32.settings["precision"], bf16.settings["precision"]) == ("fp32", "bf16")
    # The feature network really ran in bf16; the pictures differ as much as any two orders of summation make
    # them (the optimisation is chaotic), so the numbers are compared, not the pixels.
    assert not torch.equal(fp32.image, bf16.image)
    ours, theirs = fp32.settings["quality"], bf16.settings["quality"]
    for name in ("content_distance", "style_distance", "colour_distance"):
        assert theirs[name] == pytest.approx(ours[name], rel=0.05), name
    assert theirs["structure_kept"] == pytest.approx(ours["structure_kept"], abs=0.03)
