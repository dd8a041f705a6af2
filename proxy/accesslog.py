"""One access-log line per request, JSON (default) or plain text."""

from __future__ import annotations

import json
import time
from typing import TextIO

from .server import RequestRecord


class AccessLog:
    def __init__(self, log_format: str, stream: TextIO) -> None:
        self.log_format = log_format
        self.stream = stream

    def __call__(self, record: RequestRecord) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        if self.log_format == "json":
            line = json.dumps(
                {
                    "time": now,
                    "method": record.method,
                    "path": record.path,
                    "route": record.route,
                    "origin": record.origin,
                    "decision": record.decision,
                    "status": record.status,
                    "bytes": record.bytes_sent,
                    "upstream_ms": None
                    if record.upstream_ms is None
                    else round(record.upstream_ms, 3),
                    "total_ms": round(record.total_ms, 3),
                    **({"error": record.error} if record.error else {}),
                },
                separators=(",", ":"),
            )
        else:
            upstream = "-" if record.upstream_ms is None else f"{record.upstream_ms:.1f}ms"
            line = (
                f"{now} {record.method} {record.path} {record.status} {record.decision} "
                f"route={record.route or '-'} origin={record.origin or '-'} "
                f"bytes={record.bytes_sent} upstream={upstream} total={record.total_ms:.1f}ms"
            )
        self.stream.write(line + "\n")
        self.stream.flush()
