"""One Flask-CORS option set, as Flask-CORS resolves it, translated to cors-edge route keys.

Where Flask-CORS is safe its meaning is kept exactly; where it is not (``*`` with
credentials, start-anchored regex origins, a reflected ``*``, ``null``) the translation
refuses and says so in a :class:`Refusal`, which becomes a comment and a stderr line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .importer_eval import Regex, Unknown, Where
from .origins import OriginError, normalise_configured_origin
from .policy import TOKEN_RE

ALL_METHODS = ("GET", "HEAD", "POST", "OPTIONS", "PUT", "PATCH", "DELETE")
# Flask-CORS treats a string holding any of these as a regular expression.
REGEX_HINTS = frozenset("*\\]?$^[]()")
KNOWN_OPTIONS = frozenset(
    {"origins", "methods", "expose_headers", "allow_headers", "supports_credentials"}
    | {"max_age", "send_wildcard", "vary_header", "automatic_options", "always_send"}
    | {"allow_private_network", "resources", "intercept_exceptions"}
)
CONFIG_KEYS = {f"CORS_{name.upper()}": name for name in KNOWN_OPTIONS - {"automatic_options"}}
CONFIG_KEYS["CORS_AUTOMATIC_OPTIONS"] = "automatic_options"
DEFAULTS: dict[str, Any] = {
    "origins": "*",
    "methods": list(ALL_METHODS),
    "allow_headers": "*",
    "expose_headers": None,
    "supports_credentials": False,
    "max_age": None,
    "send_wildcard": False,
    "automatic_options": True,
    "vary_header": True,
    "resources": r"/*",
    "intercept_exceptions": True,
    "always_send": True,
    "allow_private_network": False,
}


@dataclass(frozen=True)
class Raw:
    """An option's value and where it came from (``where`` is None for a default)."""

    value: Any
    where: Where | None
    label: str


@dataclass(frozen=True)
class Refusal:
    kind: str  # wildcard-credentials | regex-anchor | reflected-wildcard | null
    where: Where | None
    message: str
    pattern: str = ""  # the Flask-CORS regex, for regex-anchor


@dataclass
class Fields:
    """The cors-edge keys of one route; ``origins`` is "*" or a list of (kind, text)."""

    origins: str | list[tuple[str, str]]
    methods: list[str]
    allow_headers: str | list[str]
    expose_headers: str | list[str]
    supports_credentials: bool
    max_age: int | None
    allow_private_network: bool
    provenance: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    todos: list[str] = field(default_factory=list)
    no_effect: list[str] = field(default_factory=list)


def source_text(value: Any) -> str:
    """A string as it is written in Python source (raw when it holds a backslash)."""
    if isinstance(value, Regex):
        return f"re.compile({source_text(value.pattern)})"
    if isinstance(value, str) and '"' not in value:
        return f'r"{value}"' if "\\" in value else f'"{value}"'
    return repr(value)


def _iterable(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple | set) else [value]


def _at(raw: Raw) -> str:
    return f"{raw.where}" if raw.where else "Flask-CORS default"


def translate(options: dict[str, Raw], at: Where | None = None) -> Fields:
    """``at`` (the CORS() call or decorator) names refusals of options left at defaults."""
    fields = Fields("*", [], "*", [], False, None, False)
    for name, raw in options.items():
        if isinstance(raw.value, Unknown):
            fields.todos.append(
                f"{raw.value.where}: TODO: {name}={raw.value.text} is not evaluated; "
                + (
                    "no origin is allowed until you list them"
                    if name == "origins"
                    else "the Flask-CORS default is used"
                )
            )
            options = {
                **options,
                name: Raw([] if name == "origins" else DEFAULTS.get(name), None, "TODO"),
            }
        if raw.where is not None and name not in ("resources", "automatic_options"):
            config_key = raw.label.startswith("CORS_")
            fields.provenance[name] = f"{raw.label}, {raw.where}" if config_key else str(raw.where)
    credentials = bool(options["supports_credentials"].value)
    fields.supports_credentials = credentials
    origins = options["origins"]
    where = origins.where or options["supports_credentials"].where or at
    _origins(
        fields, Raw(origins.value, where, origins.label), credentials, options["send_wildcard"]
    )
    _methods(fields, options["methods"])
    fields.allow_headers = _headers(fields, options["allow_headers"], "allow_headers")
    fields.expose_headers = _headers(fields, options["expose_headers"], "expose_headers")
    _max_age(fields, options["max_age"])
    fields.allow_private_network = bool(options["allow_private_network"].value)
    _notes(fields, options)
    return fields


def _origins(fields: Fields, raw: Raw, credentials: bool, send_wildcard: Raw) -> None:
    items = ["." + "*" if item == "*" else item for item in _iterable(raw.value)]
    if ".*" in items:
        if credentials:
            fields.origins = []
            fields.refusals.append(
                Refusal(
                    "wildcard-credentials",
                    raw.where,
                    (
                        'origins "*" with supports_credentials: Flask-CORS reflected every origin '
                        "with Access-Control-Allow-Credentials, so any site could read your users' "
                        "data; no origin is allowed here until you list those that may send "
                        "cookies"
                    ),
                )
            )
            return
        fields.origins = "*"
        if not send_wildcard.value:
            fields.refusals.append(
                Refusal(
                    "reflected-wildcard",
                    raw.where,
                    (
                        'origins "*" without send_wildcard: Flask-CORS reflected the request\'s '
                        'origin; cors-edge sends a plain "*" (same verdict in every browser, '
                        "cacheable, never mistaken for a vetted origin)"
                    ),
                )
            )
        return
    entries: list[tuple[str, str]] = []
    for item in items:
        entry = _origin_entry(fields, raw, item)
        if entry is not None and entry not in entries:
            entries.append(entry)
    fields.origins = entries


def _origin_entry(fields: Fields, raw: Raw, item: Any) -> tuple[str, str] | None:
    where = _at(raw)
    if isinstance(item, Regex) or (isinstance(item, str) and not REGEX_HINTS.isdisjoint(item)):
        pattern = item.pattern if isinstance(item, Regex) else item
        return _regex_origin(fields, raw, pattern)
    if not isinstance(item, str):
        fields.todos.append(f"{where}: TODO: origin {source_text(item)} is not a string; left out")
        return None
    if item.lower() == "null":
        fields.refusals.append(
            Refusal(
                "null",
                raw.where,
                (
                    '"null" is the origin of sandboxed iframes, file: pages and some redirects, '
                    "which any site can produce; left out"
                ),
            )
        )
        return None
    try:
        normalised = normalise_configured_origin(item)
    except OriginError:
        fields.no_effect.append(
            f"{where}: origin {source_text(item)} never matched a browser's Origin "
            "(it is not scheme://host[:port]); left out"
        )
        return None
    if normalised != item.lower():
        fields.no_effect.append(
            f"{where}: origin {source_text(item)} never matched a browser's Origin "
            f"(browsers send {normalised}); left out"
        )
        return None
    return ("exact", normalised)


def _regex_origin(fields: Fields, raw: Raw, pattern: str) -> tuple[str, str] | None:
    try:
        re.compile(pattern)
    except re.error as error:
        fields.todos.append(
            f"{_at(raw)}: TODO: origin regex {source_text(pattern)} is invalid ({error}); "
            "Flask-CORS refuses to start with it; left out"
        )
        return None
    anchored = pattern[1:] if pattern.startswith("^") else pattern
    ends = anchored.endswith("$") and not anchored.endswith("\\$") and "|" not in anchored
    body = anchored[:-1] if ends else anchored
    if not ends:
        fields.refusals.append(
            Refusal(
                "regex-anchor",
                raw.where,
                (
                    f"origin regex {source_text(pattern)} was matched from the start only, so "
                    "any origin that merely begins with a match (the same name followed by "
                    ".evil.example) passed; cors-edge matches it in full"
                ),
                pattern,
            )
        )
    if "*." in pattern and "://" in pattern:
        fields.comments.append(
            f"Flask-CORS read {source_text(pattern)} as a regex (it never matched subdomains); "
            "for every subdomain write https://*.example.com as a plain entry, cors-edge's wildcard"
        )
    # Flask-CORS compiles origin regexes case-insensitively.
    return ("regex", f"^(?i:{body})$")


def _methods(fields: Fields, raw: Raw) -> None:
    value = raw.value
    if value is None:
        fields.methods = []
        return
    text = ", ".join(sorted(str(v) for v in value)) if isinstance(value, list | tuple) else value
    names = [part.strip().upper() for part in str(text).split(",") if part.strip()]
    bad = [name for name in names if not TOKEN_RE.fullmatch(name)]
    if bad:
        fields.todos.append(f"{_at(raw)}: TODO: methods {bad} are not method names; left out")
    fields.methods = [name for name in names if name not in bad]


def _headers(fields: Fields, raw: Raw, name: str) -> str | list[str]:
    if raw.value is None:
        return []
    text_items: list[str] = []
    for item in _iterable(raw.value):
        text = item.pattern if isinstance(item, Regex) else str(item)
        if text in ("*", ".*") and name == "allow_headers":
            return "*"
        if text == "*":
            return "*"
        if name == "expose_headers":
            text_items.extend(part.strip() for part in text.split(",") if part.strip())
        elif isinstance(item, Regex) or not REGEX_HINTS.isdisjoint(text):
            fields.todos.append(
                f"{_at(raw)}: TODO: allow_headers regex {source_text(text)} cannot be "
                "expressed; list the header names (left out)"
            )
        elif TOKEN_RE.fullmatch(text):
            text_items.append(text)
        else:
            fields.todos.append(
                f"{_at(raw)}: TODO: {name} {source_text(text)} is not a header name"
            )
    return text_items


def _max_age(fields: Fields, raw: Raw) -> None:
    value = raw.value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        fields.max_age = value
        return
    fields.todos.append(f"{_at(raw)}: TODO: max_age {value!r} is not a number of seconds")


def _notes(fields: Fields, options: dict[str, Raw]) -> None:
    for name, raw in options.items():
        if name not in KNOWN_OPTIONS:
            fields.no_effect.append(
                f"{_at(raw)}: {raw.label} is not a Flask-CORS option; it had "
                "no effect and is not carried over"
            )
    vary = options["vary_header"]
    if vary.where is not None and not vary.value:
        fields.comments.append(
            f"vary_header false ({vary.where}): cors-edge always sends Vary "
            "where the answer varies, so caches never mix origins"
        )
    intercept = options["intercept_exceptions"]
    if intercept.where is not None and not intercept.value:
        fields.comments.append(
            f"intercept_exceptions false ({intercept.where}): cors-edge stamps error responses too"
        )


def combine(preflight: Fields, actual: Fields) -> Fields:
    """Stacked ``@cross_origin``: the outer one answers the preflight, the inner one the
    actual request, so a preflighted request needs both; cors-edge has one policy per
    route, so where they differ the stricter reading is kept and named."""
    result = Fields(
        actual.origins,
        preflight.methods,
        preflight.allow_headers,
        actual.expose_headers,
        actual.supports_credentials and preflight.supports_credentials,
        preflight.max_age,
        preflight.allow_private_network,
    )
    result.provenance = {
        **actual.provenance,
        **{
            k: v
            for k, v in preflight.provenance.items()
            if k in ("methods", "allow_headers", "max_age", "allow_private_network")
        },
    }
    for part in (preflight, actual):
        result.comments += part.comments
        result.refusals += part.refusals
        result.todos += part.todos
        result.no_effect += part.no_effect
    if preflight.origins != "*" and preflight.origins != actual.origins:
        inner = actual.origins if isinstance(actual.origins, list) else []
        kept = [entry for entry in inner if entry in preflight.origins]
        if actual.origins == "*" or kept != inner:
            result.comments.append(
                "the inner @cross_origin allowed origins the outer one refuses for preflights; "
                "cors-edge keeps only the origins both allow (simple requests from the others "
                "were readable under Flask-CORS)"
            )
        outer = preflight.origins if isinstance(preflight.origins, list) else []
        result.origins = list(outer) if actual.origins == "*" else kept
    if actual.supports_credentials and not preflight.supports_credentials:
        result.comments.append(
            "the inner @cross_origin allowed credentials, the outer one not; credentials are "
            "off here (simple credentialed requests were readable under Flask-CORS)"
        )
    return result
