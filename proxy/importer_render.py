"""The imported policy as commented YAML: defaults written out, provenance on every key."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from .importer_fields import ALL_METHODS, Fields

if TYPE_CHECKING:
    from .importer import Usage
    from .importer_policy import Route

_PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_.:/\-*]*")
_RESERVED = re.compile(r"(?i)(y|n|yes|no|on|off|true|false|null|~|[0-9.:_\-]+)")
# Control characters and every line break YAML knows (NEL, LS, PS too): in a comment
# they would end it, and what followed (an app's string) would be policy.
_UNSAFE_IN_COMMENT = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")

HEADER = """\
# cors-edge policy imported from Flask-CORS ({sources}) by `cors-edge import`.
#
# It decides every request as Flask-CORS did, except where Flask-CORS was unsafe:
# those places say "refused" below (and were printed on stderr). Review each TODO,
# then:
#   cors-edge check --config THIS_FILE
# Run it next to the unchanged app first (enforce: shadow below: everything is
# forwarded, the app's CORS headers pass untouched), read
# cors_edge_shadow_disagreements_total on /metrics, then enforce and remove Flask-CORS.

upstream: http://127.0.0.1:5000   # TODO: where the Flask app listens
# Paths no route matches are forwarded without CORS headers, as under Flask-CORS;
# `unmatched: block` would also keep cross-origin requests to them away from Flask.

defaults:                         # Flask-CORS's own defaults, written out
  methods: [{methods}]
  allow_headers: "*"              # every header the browser asks for, answered by name
  expose_headers: []
  supports_credentials: false
  max_age: null                   # Flask-CORS sends no Access-Control-Max-Age
  send_wildcard: true             # "*" is sent as "*", never reflected
  allow_private_network: false
  enforce: true                   # refused cross-origin requests never reach Flask

routes:                           # first match wins: Flask-CORS's order
"""


def comment_text(text: str) -> str:
    """``text`` made safe for one ``#`` comment line: its strings come from the app's
    source, and a newline in one would start a line of policy."""
    return _UNSAFE_IN_COMMENT.sub(lambda m: m[0].encode("unicode_escape").decode(), text)


def scalar(text: str) -> str:
    if _PLAIN.fullmatch(text) and not _RESERVED.fullmatch(text):
        return text
    return json.dumps(text)


def _flow(items: list[str]) -> str:
    return "[" + ", ".join(scalar(item) for item in items) + "]"


def _line(key: str, value: str, note: str | None) -> str:
    text = f"    {key}: {value}"
    return f"{text:<34}  # {comment_text(note)}" if note else text


def _route_lines(route: Route) -> list[str]:
    fields: Fields = route.fields
    where = fields.provenance
    lines = [f"  # {comment_text(title)}" for title in route.title]
    lines += [f"  # NOTE: {comment_text(note)}" for note in fields.comments]
    lines += [f"  # REFUSED: {comment_text(refusal.message)}" for refusal in fields.refusals]
    lines += [f"  # {comment_text(todo)}" for todo in fields.todos]
    lines.append(f"  - {route.key}: {scalar(route.rule)}")
    if fields.origins == "*":
        lines.append(_line("origins", '"*"', where.get("origins")))
    elif not isinstance(fields.origins, list) or not fields.origins:
        lines.append(_line("origins", "[]", "TODO: no origin allowed; list them"))
    else:
        lines.append(_line("origins", "", where.get("origins")).rstrip())
        for kind, text in fields.origins:
            value = f"{{regex: {json.dumps(text)}}}" if kind == "regex" else scalar(text)
            lines.append(f"      - {value}")
    if sorted(fields.methods) != sorted(ALL_METHODS):
        lines.append(_line("methods", _flow(fields.methods), where.get("methods")))
    if fields.allow_headers != "*":
        headers = fields.allow_headers
        lines.append(_line("allow_headers", _flow(list(headers)), where.get("allow_headers")))
    if fields.expose_headers:
        exposed = fields.expose_headers
        value = '"*"' if exposed == "*" else _flow(list(exposed))
        lines.append(_line("expose_headers", value, where.get("expose_headers")))
    if fields.supports_credentials:
        lines.append(_line("supports_credentials", "true", where.get("supports_credentials")))
    if fields.max_age is not None:
        lines.append(_line("max_age", str(fields.max_age), where.get("max_age")))
    if fields.allow_private_network:
        comment = where.get("allow_private_network")
        lines.append(_line("allow_private_network", "true", comment))
    return lines


def render(routes: list[Route], usage: Usage, sources: list[str]) -> str:
    out = [HEADER.format(sources=comment_text(", ".join(sources)), methods=", ".join(ALL_METHODS))]
    for route in routes:
        out.append("\n".join(_route_lines(route)) + "\n\n")
    if not routes:
        out.append("  []\n")
    todos = list(dict.fromkeys(usage.todos + [t for r in routes for t in r.fields.todos]))
    if todos:
        out.append("# TODO (not evaluated; nothing was guessed):\n")
        out += [f"#   {comment_text(todo)}\n" for todo in todos]
    no_effect = list(
        dict.fromkeys(usage.no_effect + [n for r in routes for n in r.fields.no_effect])
    )
    if no_effect:
        out.append("# Had no effect in Flask-CORS, so not carried over:\n")
        out += [f"#   {comment_text(note)}\n" for note in no_effect]
    return "".join(out).rstrip("\n") + "\n"
