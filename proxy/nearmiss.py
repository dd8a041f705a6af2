"""Near misses: the allowed origin a refused one was probably meant to be, and what differs.

Most refused origins in practice are one typo away from an allowed one: another port
(a dev server moved from 3000 to 5173), http for https, a `www.`, a trailing slash
pasted from the address bar, upper case, `localhost` for `127.0.0.1`. Naming the
nearest allowed origin and the difference turns "not allowed" into a fix.

Pure: strings in, a :class:`NearMiss` out. Used by ``explain``, ``test``, ``probe``
(an ``Access-Control-Allow-Origin`` that is not the page's origin) and the debug header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# The kinds of difference, in the order they are reported.
SCHEME, HOST, WWW, APEX, PORT, PATH, CASE = "scheme", "host", "www", "apex", "port", "path", "case"
_ORDER = (SCHEME, HOST, WWW, APEX, PORT, PATH, CASE)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# Loose on purpose: the refused side may be anything a user or a server wrote.
_LOOSE_RE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<host>\[[^\]/]*\]|[^:/?#]*)"
    r"(?::(?P<port>[0-9]*))?(?P<path>.*)",
    re.DOTALL,
)
_LOOPBACK = re.compile(r"localhost|127(?:\.[0-9]+){3}|\[::1\]", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class NearMiss:
    allowed: str  # the policy entry (or header value) it nearly matches, as written
    nearest: str  # the origin that entry would accept
    differences: tuple[str, ...]  # kinds, from SCHEME ... CASE
    details: tuple[str, ...]  # one human phrase per difference

    @property
    def hint(self) -> str:
        shown = self.nearest if self.nearest == self.allowed else f"{self.nearest} ({self.allowed})"
        return f"nearest allowed origin: {shown}; differs in {'; '.join(self.details)}"


@dataclass(frozen=True, slots=True)
class _Parts:
    text: str
    scheme: str
    host: str
    port: int | None  # the effective port (default filled in), None if unknown
    explicit_port: bool
    path: str


def _parts(text: str) -> _Parts | None:
    match = _LOOSE_RE.fullmatch(text.strip())
    if match is None or not match["host"]:
        return None
    scheme = match["scheme"]
    port_text = match["port"]
    port = int(port_text) if port_text else _DEFAULT_PORTS.get(scheme.lower())
    return _Parts(text, scheme, match["host"], port, bool(port_text), match["path"])


def nearest(refused: str, allowed: Iterable[str]) -> NearMiss | None:
    """The allowed origin ``refused`` nearly is, or None when none is near.

    ``allowed`` holds a route's origin entries as written (``origin_sources``):
    exact origins, ``scheme://*.domain[:port]`` and ``regex:PATTERN``; ``*`` allows
    everything, so there is nothing near to report.
    """
    page = _parts(refused)
    if page is None:
        return None
    best: tuple[int, NearMiss] | None = None
    for entry in allowed:
        found = _against(page, entry)
        if found is not None and (best is None or found[0] < best[0]):
            best = found
    return best[1] if best is not None else None


def _against(page: _Parts, entry: str) -> tuple[int, NearMiss] | None:
    if entry == "*" or entry == "null":
        return None
    if entry.startswith("regex:"):
        return _against_regex(page, entry)
    wildcard = "://*." in entry
    target = _parts(entry.replace("://*.", "://", 1) if wildcard else entry)
    if target is None:
        return None
    kinds, details, score = _compare(page, target, wildcard)
    if not kinds or score >= _FAR:
        return None
    nearest_origin = _origin_text(target, page, wildcard)
    return score, NearMiss(entry, nearest_origin, kinds, details)


_FAR = 10  # a host that is simply another site, plus anything else: not a near miss


def _compare(
    page: _Parts, target: _Parts, wildcard: bool
) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    found: dict[str, str] = {}
    score = 0
    if page.scheme.lower() != target.scheme.lower():
        found[SCHEME] = f"scheme: {page.scheme.lower()}, allowed {target.scheme.lower()}"
        score += 2
    host_kind, host_detail, host_score = _compare_hosts(page.host, target.host, wildcard)
    if host_kind:
        found[host_kind] = host_detail
        score += host_score
    both_default = not page.explicit_port and not target.explicit_port
    if page.port != target.port and not both_default:
        found[PORT] = f"port: {_port_text(page)}, allowed {_port_text(target)}"
        score += 2
    if page.path:
        found[PATH] = (
            f"{'a trailing slash' if page.path == '/' else 'a path (' + page.path + ')'}: "
            "an origin is scheme://host[:port], with no path"
        )
        score += 1
    elif target.path:
        found[PATH] = f"the allowed entry has a path ({target.path}), which no origin ever has"
        score += 1
    if host_kind in (None, WWW, APEX):
        if _has_upper(page):
            found[CASE] = "upper case: browsers send scheme and host in lower case"
            score += 1
        elif _has_upper(target):
            found[CASE] = "upper case in the allowed value: origins are compared byte for byte"
            score += 1
    kinds = tuple(kind for kind in _ORDER if kind in found)
    return kinds, tuple(found[kind] for kind in kinds), score


def _compare_hosts(page_host: str, target: str, wildcard: bool) -> tuple[str | None, str, int]:
    host, target = page_host.lower(), target.lower()
    if wildcard:
        if host.endswith("." + target):
            return None, "", 0
        if host == target:
            return APEX, f"host: {host} is the apex; *.{target} covers subdomains only", 1
    if host == target:
        return None, "", 0
    if host == "www." + target or target == "www." + host:
        return WWW, f"www.: {host}, allowed {target}", 1
    near = (
        (_LOOPBACK.fullmatch(host) and _LOOPBACK.fullmatch(target))
        or host.split(".")[-2:] == target.split(".")[-2:]
        or _distance(host, target) <= 2
    )
    detail = f"host: {host}, allowed {target}"
    return HOST, detail, 3 if near else _FAR


def _against_regex(page: _Parts, entry: str) -> tuple[int, NearMiss] | None:
    try:
        pattern = re.compile(entry.removeprefix("regex:"))
    except re.error:
        return None
    # A regex names no origin to compare with: try the usual fixes one at a time.
    for fixed, kind, detail in _fixes(page):
        if pattern.fullmatch(fixed):
            return 1, NearMiss(entry, fixed, (kind,), (detail,))
    return None


def _fixes(page: _Parts) -> Sequence[tuple[str, str, str]]:
    scheme, host = page.scheme.lower(), page.host.lower()
    port = f":{page.port}" if page.explicit_port and page.port != _DEFAULT_PORTS.get(scheme) else ""
    base = f"{scheme}://{host}{port}"
    other = {"http": "https", "https": "http"}.get(scheme, scheme)
    out = []
    if page.path:
        out.append((base, PATH, "a path or trailing slash: an origin has none"))
    if base != page.text and not page.path:
        out.append((base, CASE, "upper case: browsers send scheme and host in lower case"))
    out.append((f"{other}://{host}{port}", SCHEME, f"scheme: {scheme}, allowed {other}"))
    if host.startswith("www."):
        out.append((f"{scheme}://{host[4:]}{port}", WWW, f"www.: {host}, allowed {host[4:]}"))
    else:
        out.append((f"{scheme}://www.{host}{port}", WWW, f"www.: {host}, allowed www.{host}"))
    if port:
        out.append((f"{scheme}://{host}", PORT, f"port: {page.port}, allowed the default"))
    return out


def _origin_text(target: _Parts, page: _Parts, wildcard: bool) -> str:
    host = target.host.lower()
    if wildcard:
        page_host = page.host.lower()
        host = page_host if page_host.endswith("." + host) else f"*.{host}"
    port = f":{target.port}" if target.explicit_port else ""
    return f"{target.scheme.lower()}://{host}{port}"


def _has_upper(parts: _Parts) -> bool:
    return parts.scheme != parts.scheme.lower() or parts.host != parts.host.lower()


def _port_text(parts: _Parts) -> str:
    if parts.port is None:
        return "none"
    return str(parts.port) if parts.explicit_port else f"{parts.port} (the default)"


def _distance(a: str, b: str) -> int:
    """Levenshtein distance, for telling a typo'd host from another site."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
