"""Lint: warnings about a policy that loads but probably does not say what its author meant.

Reads the loader's drafts (values with where each was written), so every warning
names ``file:line key``. Warnings never refuse a file; ``cors-edge check`` prints
them and ``serve`` logs them at every load.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .drafts import Located, RouteDraft, Where
from .origins import OriginError, SubdomainWildcard

CHROMIUM_MAX_AGE_CAP = 7200  # seconds; Chromium clamps Access-Control-Max-Age to this
FIREFOX_MAX_AGE_CAP = 86400

# An unescaped "." that is not itself quantified (".*", ".+" are flagged elsewhere).
_LOOSE_DOT = re.compile(r"(?<!\\)\.(?![*+?])")
# A character class ("[^.]", "[\w.-]"): a "." inside one is a literal dot.
_CHAR_CLASS = re.compile(r"(?<!\\)\[(?:\\.|[^\]\\])*\]")
# Inline flags before the anchor ("(?i)^https://..."): still anchored.
_LEADING_FLAGS = re.compile(r"\A\(\?[aiLmsux]+\)")
# A final unbounded repetition: "*", "+" or "{n,}", maybe lazy, maybe then "$" or "\Z".
_UNBOUNDED_TAIL = re.compile(r"(?P<repeat>\*|\+|\{[0-9]+,\})\??(?:\$|\\Z)?\Z")
# An unbounded repetition followed at once by plain name characters.
_REPEAT_BEFORE_NAME = re.compile(
    r"(?<!\\)(?P<repeat>\*|\+|\{[0-9]+,\})\??(?P<name>[A-Za-z0-9][A-Za-z0-9-]*)"
)
# What a suffix that lets another site in looks like: more labels after the host.
_FOREIGN_SUFFIX = ".evil.example"
# Suffixes under which anyone can get a name: top-level and public second-level domains,
# and hosting platforms that give every customer a subdomain. A wildcard or a regex that
# lets a made-up name under one of them in lets strangers' sites in.
OPEN_SUFFIXES = (
    *("com", "net", "org", "io", "dev", "app", "co", "ai", "me", "xyz", "info", "de"),
    *("uk", "fr", "nl", "eu", "us", "ca", "au", "jp", "in", "br", "cn", "ru"),
    *("co.uk", "org.uk", "com.au", "co.jp", "com.br", "co.in", "co.nz", "com.cn"),
    *("github.io", "gitlab.io", "herokuapp.com", "vercel.app", "netlify.app", "pages.dev"),
    *("workers.dev", "web.app", "firebaseapp.com", "appspot.com", "azurewebsites.net"),
    *("cloudfront.net", "s3.amazonaws.com", "ngrok.io", "ngrok-free.app", "onrender.com"),
    *("fly.dev", "glitch.me", "repl.co", "blogspot.com", "wordpress.com"),
)
_PROBE_NAME = "cors-edge-lint-probe"


def lint(routes: Sequence[RouteDraft]) -> tuple[str, ...]:
    """Every warning for the routes, in file order, each once."""
    warnings: list[str] = []
    for route in routes:
        warnings.extend(lint_route(route))
    warnings.extend(_wildcard_beside_credentials(routes))
    return tuple(dict.fromkeys(warnings))  # a value from defaults: is warned about once


def lint_route(route: RouteDraft) -> list[str]:
    warnings: list[str] = []
    rule = route.rule.value
    if not rule.is_regex and rule.source.endswith("/*"):
        warnings.append(
            route.rule.where.warning(
                f"{rule.source!r} matches one segment only; a pasted Flask-CORS key "
                f"covers every depth: write {rule.source}* (glob) or use regex:"
            )
        )
    fields = route.fields
    if fields.origins is not None:
        for entry in fields.origins.value.entries:
            if entry.value == "null":
                warnings.append(
                    entry.where.warning(
                        '"null" is sent by sandboxed iframes, file: pages and some redirects; '
                        "any site can produce it, so allowing it is nearly allowing everyone"
                    )
                )
    max_age = fields.max_age
    if max_age is not None and max_age.value is not None and max_age.value > CHROMIUM_MAX_AGE_CAP:
        warnings.append(
            max_age.where.warning(
                f"{max_age.value} exceeds browsers' caps (Chromium {CHROMIUM_MAX_AGE_CAP} s, "
                f"Firefox {FIREFOX_MAX_AGE_CAP} s); preflights will be repeated sooner"
            )
        )
    if fields.origins is not None:
        for regex in fields.origins.value.regexes:
            warnings.extend(lint_origin_regex(regex))
        for entry in fields.origins.value.entries:
            warnings.extend(lint_open_suffix(entry))
    return warnings


def lint_open_suffix(entry: Located[str]) -> list[str]:
    """A wildcard or regex origin that lets any name under a public suffix in
    (``https://*.com``, ``*.github.io``, ``^https://.*\\.com$``): strangers' sites."""
    text = entry.value
    if text.startswith("regex:"):
        try:
            pattern = re.compile(text[len("regex:") :])
        except re.error:
            return []
        if unbounded_tail(pattern.pattern) or unbounded_name_prefix(pattern.pattern):
            return []  # warned about already, in its own words
        hits = [
            (suffix, probe)
            for suffix in OPEN_SUFFIXES
            for probe in (f"https://{_PROBE_NAME}.{suffix}", f"http://{_PROBE_NAME}.{suffix}")
            if pattern.fullmatch(probe)
        ]
    elif "://*." in text:
        try:
            wildcard = SubdomainWildcard.parse(text)
        except OriginError:
            return []
        suffix = wildcard.suffix
        if "." in suffix and suffix not in OPEN_SUFFIXES:
            return []
        hits = [(suffix, f"{wildcard.scheme}://{_PROBE_NAME}.{suffix}")]
    else:
        return []
    if not hits:
        return []
    suffix, probe = hits[0]
    return [
        entry.where.warning(
            f"lets every site under .{suffix} in ({probe} matches): anyone can get a name "
            "there; list your own hosts, or a wildcard of a domain you control"
        )
    ]


def lint_origin_regex(regex: Located[re.Pattern[str]]) -> list[str]:
    pattern = regex.value.pattern
    where = regex.where
    warnings: list[str] = []
    if _LOOSE_DOT.search(_CHAR_CLASS.sub("", pattern.replace("\\\\", ""))):
        warnings.append(
            where.warning(
                "unescaped '.' matches any character (pr-1XpreviewYexample.com); "
                "write \\. for a literal dot"
            )
        )
    if not _LEADING_FLAGS.sub("", pattern).startswith("^") or not pattern.endswith("$"):
        warnings.append(
            where.warning(
                "regex origins are matched in full, but this one has no ^...$ anchors; "
                "add them so the file says what cors-edge does"
            )
        )
    if regex.value.fullmatch("null"):
        warnings.append(
            where.warning(
                'matches "null", but a regex never allows it (only a literal "null" entry '
                "does, and that is nearly allowing everyone)"
            )
        )
    prefix = unbounded_name_prefix(pattern)
    if prefix is not None:
        repeat, name = prefix
        warnings.append(
            where.warning(
                f"{repeat!r} right before {name!r} lets any name that merely ends in it in "
                f"(https://evil{name}...); put \\. after the repetition for whole labels"
            )
        )
    tail = unbounded_tail(pattern)
    if tail is not None:
        warnings.append(
            where.warning(
                f"ends in {tail!r}, which lets any suffix in "
                f"(https://yoursite.example{_FOREIGN_SUFFIX} is another site); "
                "end the pattern with the exact host (and port)"
            )
        )
    return warnings


def unbounded_tail(pattern: str) -> str | None:
    """The pattern's final unbounded repetition when it can add more host labels
    (``.*``, ``.+``, ``[a-z.]*``, ``(\\.[a-z]+)*``, ``\\S+``...), else ``None``.

    A bounded tail such as a port (``(:[0-9]+)?``, ``[0-9]+``) is not reported.
    """
    found = _UNBOUNDED_TAIL.search(pattern)
    if found is None:
        return None
    atom = _atom_before(pattern, found.start())
    if atom is None:
        return None
    try:
        lets_labels_in = re.fullmatch(f"(?:{atom})+", _FOREIGN_SUFFIX, re.DOTALL) is not None
    except re.error:
        return None
    start = found.start()
    return pattern[start - len(atom) : found.end("repeat")] if lets_labels_in else None


def unbounded_name_prefix(pattern: str) -> tuple[str, str] | None:
    """A repetition that can produce letters, directly followed by a letter or digit
    (``.*example``, ``[a-z]+example``, ``([a-z]+-)*example``): hosts of other domains
    that end in that text match, such as ``evilexample.com`` or ``evil-example.com``.
    Returns the repetition and the text after it, else ``None``."""
    for found in _REPEAT_BEFORE_NAME.finditer(pattern):
        atom = _atom_before(pattern, found.start())
        if atom is None:
            continue
        try:
            repeated = re.compile(f"(?:{atom})+", re.DOTALL)
            makes_names = any(repeated.fullmatch(text) for text in ("evil", "evil-"))
        except re.error:
            continue
        if makes_names:
            start = found.start() - len(atom)
            return pattern[start : found.end("repeat")], found["name"]
    return None


def _atom_before(pattern: str, end: int) -> str | None:
    """The regex atom that ends at ``end`` (a group, a class, an escape or one char)."""
    if end == 0:
        return None
    last = pattern[end - 1]
    if last in ")]":
        opener = "(" if last == ")" else "["
        depth = 0
        for start in range(end - 1, -1, -1):
            char = pattern[start]
            if start > 0 and pattern[start - 1] == "\\":
                continue
            if char == last:
                depth += 1
            elif char == opener:
                depth -= 1
                if depth == 0 or opener == "[":
                    return pattern[start:end]
        return None
    if end >= 2 and pattern[end - 2] == "\\":
        return pattern[end - 2 : end]
    return last


def _wildcard_beside_credentials(routes: Sequence[RouteDraft]) -> list[str]:
    credentialed = [
        route
        for route in routes
        if route.fields.supports_credentials is not None and route.fields.supports_credentials.value
    ]
    if not credentialed:
        return []
    others = ", ".join(route.rule.value.source for route in credentialed)
    return [
        route.fields.origins.where.warning(
            f'"*" lets every site read this route while {others} accept cookies; '
            "make sure it serves nothing user-specific"
        )
        for route in routes
        if route.fields.origins is not None and route.fields.origins.value.any_origin
    ]


def lint_scheme(public_scheme: str | None, trusts_forwarders: bool, document: Where) -> list[str]:
    """Same-origin detection needs the scheme the browser used; say when it is a guess."""
    if public_scheme is not None or trusts_forwarders:
        return []
    where = Where(document.source, document.line, "public_scheme")
    return [
        where.warning(
            "not set, and no trust_forwarded_from: same-origin detection assumes browsers "
            "reach cors-edge over http. Behind a TLS terminator set public_scheme: https "
            "(or list the terminator in trust_forwarded_from); requests whose "
            "X-Forwarded-Proto contradicts the assumption are judged cross-origin"
        )
    ]
