"""benchmarks/step_floor.py: the floor table of one optimisation step runs and says what it measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "step_floor.py"


def test_step_floor_prints_each_block_s_fraction_of_peak_and_writes_json(tmp_path):
    record = tmp_path / "floor.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--size", "32", "--repeats", "1", "--json", str(record)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("| block | GFLOP | fp32 ms") and "bf16 of peak" in line for line in lines)
    rows = [line for line in lines if line.startswith("| block")][1:]
    assert [row.split(" | ")[0] for row in rows] == [f"| block{b}" for b in range(1, 6)]
    assert all(row.count("%") == 2 for row in rows)  # a fraction of peak for fp32 and for bf16
    data = json.loads(record.read_text())
    assert data["size"] == [32, 24] and set(data["peaks"]) == {"fp32", "bf16"}
    # VGG-19's arithmetic to relu5_1, forward and backward to the input: 4.4 GFLOP at 64 x 48, so 1/4 of it here
    flops = sum(block["forward"] + block["backward"] for block in data["flops"].values())
    assert 1.0e9 < flops < 1.2e9
    assert all(data["step_s"][p] > 0 for p in ("fp32", "bf16"))
