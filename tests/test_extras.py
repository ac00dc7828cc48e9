"""Each optional extra missing in turn: `import stylecraft`, every `--help` and the commands that do not need it
work, and each command that needs it says which extra to install in one line (exit 2).

The packages of an extra are made unimportable in a subprocess (``sys.modules[name] = None``, which is how
Python reports a package that is not installed); CI also installs the core alone in a bare virtual
environment and runs the README's demo there (``.ci/run``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_content, make_style

from stylecraft.feedforward import TransformerNet, save_model

EXTRAS = {
    "studio": ["fastapi", "uvicorn", "python_multipart", "starlette", "websockets"],
    "plot": ["matplotlib"],
    "onnx": ["onnx", "onnxscript", "onnxruntime"],
    "openvino": ["openvino"],
    "video": ["av", "cv2"],
    "ray": ["ray"],
    "onnx exporter": ["onnxscript"],  # PyTorch's exporter alone missing: export said "No module named ..."
}

COMMANDS = ["transfer", "reconstruct", "texture", "grid", "layers", "score", "train", "apply", "export", "video",
            "batch", "serve", "live"]

#: Runs stylecraft's CLI in-process for each command line given, with some packages unimportable, and prints
#: each exit code and stderr as JSON.
SCRIPT = """
import contextlib, io, json, sys
blocked, runs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name in blocked:
    sys.modules[name] = None
import stylecraft
from stylecraft.cli import main
found = []
for argv in runs:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    found.append({"argv": argv, "code": code, "err": err.getvalue()})
print(json.dumps(found))
"""


def run_without(blocked: list[str], runs: list[list[str]], cwd: Path) -> list[dict[str, object]]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(blocked), json.dumps(runs)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found: list[dict[str, object]] = json.loads(done.stdout.splitlines()[-1])
    return found


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("extras")
    make_content().save(folder / "photo.png")
    make_style().save(folder / "style.png")
    save_model(TransformerNet(width=8), folder / "model.pt", {"style": "stripes"})
    (folder / "clip.mp4").write_bytes(b"\0" * 64)
    return folder


#: Per extra: a command that does not need it (must work) and the commands that do (must name the extra).
WORKS = {
    "studio": ["layers"],
    "plot": ["transfer", "photo.png", "style.png", "-o", "out.png", "--size", "32", "--iterations", "2",
             "--quiet"],
    "onnx": ["apply", "model.pt", "photo.png", "-o", "out.png", "--quiet"],
    "openvino": ["apply", "model.pt", "photo.png", "-o", "out.png", "--quiet"],
    "video": ["apply", "model.pt", "photo.png", "-o", "out.png", "--quiet"],
    "onnx exporter": ["apply", "model.pt", "photo.png", "-o", "out.png", "--quiet"],
    "ray": ["batch", "photo.png", "-o", "painted", "--model", "model.pt", "--quiet"],
}
NEEDS = {
    "studio": [["serve", "--port", "8765", "--data", "studio"],
               ["live", "--no-browser", "--port", "8767", "--data", "studio"]],
    "plot": [["transfer", "photo.png", "style.png", "-o", "plotted.png", "--size", "32", "--iterations", "2",
              "--plot", "losses.png"]],
    "onnx": [["export", "model.pt", "-o", "model.onnx"],
             ["apply", "model.pt", "photo.png", "-o", "onnx.png", "--backend", "onnx"]],
    "openvino": [["apply", "model.pt", "photo.png", "-o", "openvino.png", "--backend", "openvino"]],
    "video": [["video", "clip.mp4", "--model", "model.pt", "-o", "painted.mp4"]],
    "onnx exporter": [["export", "model.pt", "-o", "model.onnx"]],
    "ray": [["batch", "photo.png", "-o", "on-ray", "--model", "model.pt", "--engine", "ray"],
            ["serve", "--port", "8766", "--data", "studio-on-ray", "--engine", "ray"]],
}


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_without_an_extra_the_rest_works_and_its_commands_name_it(extra: str, files: Path) -> None:
    helps = [[command, "--help"] for command in COMMANDS]
    found = run_without(EXTRAS[extra], [["--help"], *helps, WORKS[extra], *NEEDS[extra]], files)
    for run in found[:len(helps) + 1]:
        assert run["code"] == 0, run
    works = found[len(helps) + 1]
    assert works["code"] == 0, works
    for run in found[len(helps) + 2:]:
        assert run["code"] == 2, run
        lines = str(run["err"]).strip().splitlines()
        assert len(lines) == 1 and f'pip install "stylecraft[{extra.split()[0]}]"' in lines[0], run
    assert not any((files / name).exists() for name in ("plotted.png", "losses.png", "model.onnx", "onnx.png",
                                                         "openvino.png", "painted.mp4", "on-ray", "studio-on-ray"))
