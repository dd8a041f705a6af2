"""``python -m proxy`` is ``cors-edge``."""

from .cli import main

raise SystemExit(main())
