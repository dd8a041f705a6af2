"""Regenerate docs/flask-cors-parity.md: ``.venv/bin/python -m tests.parity.generate``."""

from __future__ import annotations

import sys

from tests.parity.matrix import DOC, render, run_matrix


def main() -> int:
    text = render(run_matrix())
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
