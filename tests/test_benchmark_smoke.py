"""The benchmark driver runs end to end: one tiny scenario, one round, every loader.

No timing is asserted: only that a results table with numbers comes out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| preflight \| (?P<target>[^|]+) \| (?P<rps>[0-9][0-9,.]*) \|", re.M)


@pytest.mark.timeout(60)
def test_smoke_run_produces_a_results_table(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    table = (tmp_path / "results.md").read_text(encoding="utf-8")
    rows = {m["target"].strip(): float(m["rps"].replace(",", "")) for m in ROW.finditer(table)}
    assert any(target.endswith("[aiohttp]") for target in rows), table
    if shutil.which("wrk") or Path("/usr/bin/wrk").exists():
        assert any(target.endswith("[wrk]") for target in rows), table
    assert all(rps > 0 for rps in rows.values()), table
    assert (tmp_path / "results.png").stat().st_size > 0
