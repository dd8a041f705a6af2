"""The benchmark driver runs end to end: one tiny scenario, one round, every loader.

No timing is asserted: only that a results table with numbers comes out, measured by
every load generator this machine has. wrk is optional (a newcomer's machine lacks it):
the driver looks it up on PATH, and so does this test, with the same environment.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\| preflight \| (?P<target>[^|]+) \| (?P<rps>[0-9][0-9,.]*) \|", re.M)


def available_loaders() -> list[str]:
    """What ``--smoke`` promises: wrk and the aiohttp generator, or the latter alone."""
    return ["wrk", "aiohttp"] if shutil.which("wrk") else ["aiohttp"]


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
    loaders = available_loaders()
    table = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert f"loader {' + '.join(loaders)}." in table, table
    rows = {m["target"].strip(): float(m["rps"].replace(",", "")) for m in ROW.finditer(table)}
    assert rows, table
    assert all(rps > 0 for rps in rows.values()), table
    if len(loaders) > 1:
        # Side by side, each row names the loader that measured it.
        assert {target.rsplit(" [", 1)[-1].rstrip("]") for target in rows} == set(loaders), table
    # The raw results record which loader took every sample: each one ran, no other did.
    (raw,) = (tmp_path / ".runs").glob("results-smoke-*.json")
    series = json.loads(raw.read_text(encoding="utf-8"))["series"]
    measured = {sample["loader"] for s in series for sample in s["samples"]}
    assert measured == set(loaders), series
    assert (tmp_path / "results.png").stat().st_size > 0


def test_a_full_run_has_its_block_in_the_readme() -> None:
    from benchmarks import report

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    replaced = report.replace_readme_block(readme, "NEW TABLE")
    start, end = report.README_MARKERS
    assert f"{start}\nNEW TABLE\n{end}" in replaced
    assert replaced.count(start) == 1 and len(replaced) < len(readme) + 20
    with pytest.raises(ValueError):
        report.replace_readme_block("no markers here", "x")
