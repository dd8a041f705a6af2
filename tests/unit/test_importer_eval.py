"""proxy/importer_eval.py: what the source says, evaluated without running it."""

from __future__ import annotations

import ast
import textwrap

from proxy.importer_eval import Evaluator, Regex, Unknown


def _evaluator(**modules: str) -> Evaluator:
    trees = {name: ast.parse(textwrap.dedent(text)) for name, text in modules.items()}
    return Evaluator(trees, {name: f"{name}.py" for name in modules})


def _value(ev: Evaluator, module: str, expression: str) -> object:
    return ev.value(module, ast.parse(expression, mode="eval").body)


def test_literals_names_and_concatenation() -> None:
    ev = _evaluator(app="A = ['http://a.example']\nB = A + ['http://b.example']\nS = 'x' + 'y'\n")
    assert _value(ev, "app", "B") == ["http://a.example", "http://b.example"]
    assert _value(ev, "app", "{'k': (1, True, None)}") == {"k": [1, True, None]}
    assert _value(ev, "app", "S") == "xy"


def test_names_are_followed_across_files() -> None:
    ev = _evaluator(app="from pkg.settings import ORIGINS\n", settings="ORIGINS = ['http://s']\n")
    assert _value(ev, "app", "ORIGINS") == ["http://s"]


def test_regex_and_timedelta() -> None:
    ev = _evaluator(app="import re\nfrom datetime import timedelta\n")
    assert _value(ev, "app", "re.compile(r'^https://a\\.example$')") == Regex(
        "^https://a\\.example$"
    )
    assert _value(ev, "app", "timedelta(hours=1, minutes=2)") == 3720


def test_what_cannot_be_evaluated_is_unknown_with_its_line() -> None:
    ev = _evaluator(app="import os\nX = 1\nX = 2\n")
    twice = _value(ev, "app", "X")
    assert isinstance(twice, Unknown)
    env = _value(ev, "app", "os.environ.get('O')")
    assert isinstance(env, Unknown) and env.text == "os.environ.get('O')"
    assert isinstance(_value(ev, "app", "f'{X}'"), Unknown)


def test_settings_from_classes_with_bases_modules_and_strings() -> None:
    ev = _evaluator(
        app="from settings import Prod\n",
        settings="""
            CORS_ORIGINS = ['http://module']
            class Base:
                CORS_ORIGINS = ['http://base']
                CORS_MAX_AGE = 5
                lower = 1
            class Prod(Base):
                CORS_ORIGINS = ['http://prod']
        """,
    )
    by_name = ev.settings("app", ast.Name("Prod"))
    assert not isinstance(by_name, Unknown)
    assert {k: v for k, (v, _) in by_name.items()} == {
        "CORS_ORIGINS": ["http://prod"],
        "CORS_MAX_AGE": 5,
    }
    module = ev.settings("app", ast.Constant("settings"))
    assert not isinstance(module, Unknown)
    assert module["CORS_ORIGINS"][0] == ["http://module"]
    dotted = ev.settings("app", ast.Constant("settings.Base"))
    assert not isinstance(dotted, Unknown) and dotted["CORS_MAX_AGE"][0] == 5
    assert isinstance(ev.settings("app", ast.Constant("elsewhere.Config")), Unknown)


def test_annotated_assignments_are_read() -> None:
    ev = _evaluator(app="from typing import Any\nR: dict[str, Any] = {'/a': {}}\n")
    assert _value(ev, "app", "R") == {"/a": {}}
