"""The tree keeps the shape the README promises: one job per module, a pure engine,
tests that mirror proxy/, and a Layout section that lists what is there."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODULES = sorted(
    path for path in (REPO / "proxy").glob("*.py") if path.stem not in ("__init__", "__main__")
)
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# The argparse table is one long, flat list of add_argument calls.
LONG_ON_PURPOSE = {("cli.py", "build_parser")}


def test_no_module_over_400_lines() -> None:
    long = {p.name: n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_over_60_lines() -> None:
    long = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and (path.name, node.name) not in LONG_ON_PURPOSE:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_every_module_has_its_mirrored_test_file() -> None:
    tested = {path.stem.removeprefix("test_") for path in (REPO / "tests").rglob("test_*.py")}
    assert [p.name for p in MODULES if p.stem not in tested] == []


def test_the_readme_layout_lists_exactly_the_modules() -> None:
    readme = (REPO / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    listed = set(re.findall(r"proxy/(\w+)\.py", layout))
    assert listed == {p.stem for p in MODULES}


def test_the_engine_and_the_browser_check_are_pure() -> None:
    code = (
        "import sys, proxy.cors, proxy.browser, proxy.records\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'yaml', 'aiohttp'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
