"""Flask-CORS usage read out of an application's sources with ``ast``; nothing is imported or run.

The result (:class:`Usage`) is what Flask-CORS would be configured with: the extensions
(``CORS(app|blueprint, ...)``, ``CORS()`` + ``init_app``) with the ``CORS_*`` config they
read, and the views carrying ``@cross_origin`` with the URL rules they are registered on.
:mod:`proxy.importer_policy` turns it into a policy file. Whatever cannot be evaluated is
kept as :class:`Unknown` with its file:line, never guessed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .importer_eval import Evaluator, Unknown, Where

__all__ = ["Extension", "Option", "Rule", "SourceError", "Usage", "View", "Where", "read_sources"]

ROUTE_SHORTCUTS = {"get": "GET", "post": "POST", "put": "PUT", "delete": "DELETE"} | {
    "patch": "PATCH"
}
CONFIG_LOADERS_UNREAD = {"from_pyfile", "from_envvar", "from_prefixed_env", "from_file"}


@dataclass(frozen=True)
class Option:
    value: Any  # a Python value, a Regex, or an Unknown
    where: Where


Options = dict[str, Option]


@dataclass
class Extension:
    target: str  # object key of the app or blueprint
    is_blueprint: bool
    options: Options  # constructor kwargs, then init_app kwargs over them
    where: Where
    seq: int  # position in program order: config set later was not read


@dataclass(frozen=True)
class Rule:
    owner: str  # object key of the app or blueprint the rule is registered on
    rule: str
    methods: tuple[str, ...] | None
    where: Where


@dataclass
class View:
    name: str
    stacks: list[tuple[Rule, tuple[tuple[Options, Where], ...]]]  # each rule, outer-first


@dataclass
class Usage:
    apps: dict[str, Where] = field(default_factory=dict)
    blueprints: dict[str, str | None] = field(default_factory=dict)  # key -> own url_prefix
    registrations: dict[str, list[tuple[str, str | None, Where]]] = field(default_factory=dict)
    config: dict[str, list[tuple[int, str, Option]]] = field(default_factory=dict)
    extensions: list[Extension] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    views: list[View] = field(default_factory=list)
    todos: list[str] = field(default_factory=list)
    no_effect: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.extensions or any(s for v in self.views for _, s in v.stacks))


class _Reader:
    """Walks the statements of every file in program order, recording what Flask-CORS sees."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.ev = evaluator
        self.usage = Usage()
        self.seq = 0
        self.pending_cors: dict[str, tuple[Options, Where]] = {}  # CORS() kept for init_app
        self.placed: set[Where] = set()  # @cross_origin calls found on a URL rule (or inert)

    # object kinds ---------------------------------------------------------------

    def collect_objects(self, module: str, tree: ast.Module) -> None:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
                continue
            kind = self.ev.callee(module, node.value.func)
            for target in node.targets:
                if not isinstance(target, ast.Name):
                    continue
                key = f"{module}:{target.id}"
                if kind == "flask.Flask":
                    self.usage.apps[key] = self.ev.where(module, node)
                elif kind == "flask.Blueprint":
                    prefix = self.kwarg(module, node.value, "url_prefix")
                    self.usage.blueprints[key] = prefix if isinstance(prefix, str) else None
                elif (
                    kind == "flask_cors.CORS"
                    and not node.value.args
                    and not any(k.arg == "app" for k in node.value.keywords)
                ):
                    where = self.ev.where(module, node.value)
                    self.pending_cors[key] = (self.options(module, node.value), where)

    def kwarg(self, module: str, call: ast.Call, name: str) -> Any:
        for keyword in call.keywords:
            if keyword.arg == name:
                return self.ev.value(module, keyword.value)
        return None

    def options(self, module: str, call: ast.Call, skip: int = 0) -> Options:
        result: Options = {}
        if len(call.args) > skip:
            where = self.ev.where(module, call)
            self.usage.todos.append(f"{where}: TODO: positional options are not read")
        for keyword in call.keywords:
            where = self.ev.where(module, keyword.value)
            if keyword.arg is None:
                self.usage.todos.append(f"{where}: TODO: **options are not evaluated")
                continue
            result[keyword.arg] = Option(self.ev.value(module, keyword.value), where)
        return result

    # statements -----------------------------------------------------------------

    def read(self, module: str, tree: ast.Module) -> None:
        for node in _in_order(tree.body):
            self.seq += 1
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.view(module, node)
            elif isinstance(node, ast.Assign | ast.Expr):
                self.statement(module, node)

    def statement(self, module: str, node: ast.Assign | ast.Expr) -> None:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript):
                    self.config_item(module, target, node.value)
        call = node.value
        if not isinstance(call, ast.Call):
            return
        kind = self.ev.callee(module, call.func)
        if kind == "flask_cors.CORS":
            self.cors(module, node, call)
        elif isinstance(call.func, ast.Attribute):
            self.method_call(module, call, call.func)

    def cors(self, module: str, node: ast.Assign | ast.Expr, call: ast.Call) -> None:
        target = call.args[0] if call.args else None
        keyword = next((k for k in call.keywords if k.arg == "app"), None)
        if keyword is not None:  # CORS(app=app, ...)
            target = keyword.value
            call = ast.Call(call.func, call.args, [k for k in call.keywords if k is not keyword])
            ast.copy_location(call, keyword.value)
        if target is not None:  # CORS() alone was recorded with the objects, for init_app
            options = self.options(module, call, skip=1 if call.args else 0)
            self.extension(module, target, options, self.ev.where(module, call))

    def extension(self, module: str, target: ast.expr, options: Options, where: Where) -> None:
        key = self.ev.object_key(module, target)
        if key in self.usage.apps or key in self.usage.blueprints:
            is_bp = key in self.usage.blueprints
            self.usage.extensions.append(Extension(key, is_bp, options, where, self.seq))
        else:
            text = ast.unparse(target)
            self.usage.todos.append(f"{where}: TODO: CORS applied to {text}, not a known app")

    def method_call(self, module: str, call: ast.Call, func: ast.Attribute) -> None:
        owner = self.ev.object_key(module, func.value)
        if func.attr == "init_app" and owner in self.pending_cors and call.args:
            base, _ = self.pending_cors[owner]
            merged = {**base, **self.options(module, call, skip=1)}
            self.extension(module, call.args[0], merged, self.ev.where(module, call))
        elif func.attr == "register_blueprint" and call.args:
            bp = self.ev.object_key(module, call.args[0])
            prefix = self.kwarg(module, call, "url_prefix")
            prefix = prefix if isinstance(prefix, str) else None
            entry = (owner, prefix, self.ev.where(module, call))
            self.usage.registrations.setdefault(bp, []).append(entry)
        elif func.attr == "add_url_rule" and call.args:
            self.add_url_rule(module, call, owner)
        elif isinstance(func.value, ast.Attribute) and func.value.attr == "config":
            app = self.ev.object_key(module, func.value.value)
            self.config_call(module, call, func.attr, app)

    # config -----------------------------------------------------------------------

    def config_item(self, module: str, target: ast.Subscript, value: ast.expr) -> None:
        holder = target.value
        if not (isinstance(holder, ast.Attribute) and holder.attr == "config"):
            return
        key = self.ev.value(module, target.slice)
        if isinstance(key, str):
            app = self.ev.object_key(module, holder.value)
            self.set_config(
                app, key, Option(self.ev.value(module, value), self.where(module, value))
            )

    def where(self, module: str, node: ast.AST) -> Where:
        return self.ev.where(module, node)

    def config_call(self, module: str, call: ast.Call, name: str, app: str) -> None:
        where = self.ev.where(module, call)
        if name in ("update", "from_mapping"):
            for arg in call.args:
                mapping = self.ev.value(module, arg)
                if isinstance(mapping, dict):
                    for key, value in mapping.items():
                        self.set_config(app, str(key), Option(value, where))
                else:
                    self.usage.todos.append(
                        f"{where}: TODO: config.{name}() argument not evaluated"
                    )
            for keyword in call.keywords:
                value = self.ev.value(module, keyword.value)
                if keyword.arg is not None:
                    self.set_config(app, keyword.arg, Option(value, self.where(module, keyword)))
        elif name == "from_object" and call.args:
            found = self.ev.settings(module, call.args[0])
            if isinstance(found, Unknown):
                self.usage.todos.append(f"{found.where}: TODO: from_object({found.text}) not found")
                return
            for key, (value, at) in found.items():
                self.set_config(app, key, Option(value, at))
        elif name in CONFIG_LOADERS_UNREAD:
            self.usage.todos.append(
                f"{where}: TODO: config.{name}() is not read; CORS_* keys "
                "it sets are not in this policy"
            )

    def set_config(self, app: str, key: str, option: Option) -> None:
        if key.startswith("CORS_"):
            self.usage.config.setdefault(app, []).append((self.seq, key, option))

    # views --------------------------------------------------------------------------

    def view(self, module: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # Decorators apply bottom-up: a route decorator registers the function as wrapped
        # by the decorators below it, so a @cross_origin above every route has no effect.
        stack: list[tuple[Options, Where]] = []
        view = View(f"{module}:{node.name}", [])
        for decorator in reversed(node.decorator_list):
            if not isinstance(decorator, ast.Call):
                continue
            kind = self.ev.callee(module, decorator.func)
            where = self.ev.where(module, decorator)
            if kind == "flask_cors.cross_origin":
                stack.insert(0, (self.options(module, decorator), where))
            elif (rule := self.route(module, decorator)) is not None:
                view.stacks.append((rule, tuple(stack)))
                self.placed.update(where for _, where in stack)
        if stack and not view.stacks:
            self.ev.views_pending[view.name] = tuple(stack)
        elif stack and len(stack) > len(view.stacks[-1][1]):
            where = stack[0][1]
            self.placed.update(w for _, w in stack)
            self.usage.no_effect.append(
                f"{where}: @cross_origin above the route decorator had no effect "
                "(it wraps the view after Flask registered it)"
            )
        self.usage.views.append(view)

    def route(self, module: str, call: ast.Call) -> Rule | None:
        func = call.func
        if not isinstance(func, ast.Attribute) or not call.args:
            return None
        owner = self.ev.object_key(module, func.value)
        if owner not in self.usage.apps and owner not in self.usage.blueprints:
            return None
        if func.attr == "route":
            methods = self.kwarg(module, call, "methods")
        elif func.attr in ROUTE_SHORTCUTS:
            methods = [ROUTE_SHORTCUTS[func.attr]]
        else:
            return None
        return self.make_rule(module, call, owner, methods)

    def make_rule(self, module: str, call: ast.Call, owner: str, methods: Any) -> Rule | None:
        where = self.ev.where(module, call)
        text = self.ev.value(module, call.args[0])
        if not isinstance(text, str):
            self.usage.todos.append(
                f"{where}: TODO: URL rule {ast.unparse(call.args[0])} not evaluated"
            )
            return None
        listed = tuple(str(m).upper() for m in methods) if isinstance(methods, list) else None
        rule = Rule(owner, text, listed, where)
        self.usage.rules.append(rule)
        return rule

    def add_url_rule(self, module: str, call: ast.Call, owner: str) -> None:
        if owner not in self.usage.apps and owner not in self.usage.blueprints:
            return
        rule = self.make_rule(module, call, owner, self.kwarg(module, call, "methods"))
        view_node = next((k.value for k in call.keywords if k.arg == "view_func"), None)
        if view_node is None and len(call.args) >= 3:
            view_node = call.args[2]
        if rule is None or view_node is None:
            return
        stack: list[tuple[Options, Where]] = []
        while isinstance(view_node, ast.Call) and isinstance(view_node.func, ast.Call):
            inner = view_node.func
            if self.ev.callee(module, inner.func) != "flask_cors.cross_origin":
                break
            stack.append((self.options(module, inner), self.ev.where(module, inner)))
            view_node = view_node.args[0] if view_node.args else None
        if isinstance(view_node, ast.Name):
            stack.extend(self.ev.views_pending.get(f"{module}:{view_node.id}", ()))
        self.placed.update(where for _, where in stack)
        self.usage.views.append(View(ast.unparse(view_node or call), [(rule, tuple(stack))]))

    def unplaced(self, module: str, tree: ast.Module) -> None:
        """A @cross_origin the importer could not put on a URL rule is a TODO, never dropped
        silently (class-based views' ``decorators``, views registered some other way)."""
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            where = self.ev.where(module, node)
            if self.ev.callee(module, node.func) == "flask_cors.cross_origin" and (
                where not in self.placed
            ):
                self.usage.todos.append(
                    f"{where}: TODO: this @cross_origin is not on a URL rule the importer can "
                    "follow (a class-based view, a view registered another way); its policy "
                    "is not in this file"
                )


def _in_order(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements in program order, nested bodies (functions, ifs, withs, trys) in place."""
    out: list[ast.stmt] = []
    for node in body:
        out.append(node)
        for name in ("body", "orelse", "finalbody"):
            inner = getattr(node, name, None)
            if isinstance(inner, list) and not isinstance(node, ast.ClassDef):
                out.extend(_in_order(inner))
        for handler in getattr(node, "handlers", []):
            out.extend(_in_order(handler.body))
    return out


class SourceError(ValueError):
    """A source file cannot be read or parsed; ``str()`` is ``file:line: message``."""


def read_sources(paths: list[Path]) -> Usage:
    """Read every file; the first ones are the application, all are searched for names."""
    trees: dict[str, ast.Module] = {}
    names: dict[str, str] = {}
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise SourceError(f"{path}:0: cannot read: {error}") from None
        try:
            tree = ast.parse(text, filename=str(path))
        except SyntaxError as error:
            raise SourceError(f"{path}:{error.lineno or 0}: syntax error: {error.msg}") from None
        module = path.stem if path.stem != "__init__" else path.parent.name
        trees[module] = tree
        names[module] = str(path)
    evaluator = Evaluator(trees, names)
    reader = _Reader(evaluator)
    for module, tree in trees.items():
        reader.collect_objects(module, tree)
    for module, tree in trees.items():
        reader.read(module, tree)
    for module, tree in trees.items():
        reader.unplaced(module, tree)
    reader.usage.todos.extend(evaluator.todos)
    return reader.usage
