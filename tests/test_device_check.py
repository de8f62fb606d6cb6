"""The device check script (scripts/device_check.py) passes on this machine's CPU, as it must on a GPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "device_check.py"


def test_device_check_passes_every_step_on_cpu(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--work", str(tmp_path)], capture_output=True, text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert [line.split(":")[0] for line in lines] == [
        "PASS eval --exact", "PASS train 2 steps --lora --save-adapter", "PASS --adapter equals the merged model",
    ]
    assert "bfloat16 on cpu" in lines[0]
