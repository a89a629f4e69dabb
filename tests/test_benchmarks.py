"""The benchmark harness runs end to end (a smoke test: it times nothing and asserts no speed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO_ROOT


@pytest.mark.slow
def test_benchmark_harness_writes_the_report(tmp_path):
    out = tmp_path / "performance.md"
    # Shipped clips only, no baseline (it needs TensorFlow and takes minutes), no fresh venvs.
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--skip-seed", "--skip-install",
         "--data", str(tmp_path / "none"), "--clips", "4", "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    for section in ("## Machine and material", "## Targets", "## Per-clip cost by stage", "## Levers"):
        assert section in text
    assert "Seed baseline skipped: --skip-seed" in text
    raw = json.loads(out.with_suffix(".json").read_text())
    assert raw["n_clips"] == 4 and set(raw["stages"]) >= {"decode", "features", "encoder", "detector"}
    # The saved raw results re-render to the same report.
    again = tmp_path / "again.md"
    subprocess.run(
        [sys.executable, "-m", "benchmarks", "--render", str(out.with_suffix(".json")), "--out", str(again)],
        cwd=REPO_ROOT, check=True, timeout=60,
    )
    assert again.read_text() == text
