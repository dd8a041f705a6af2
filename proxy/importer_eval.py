"""Evaluating what a Flask application's source says, without running it.

Literals, names bound once to literals (in any of the files read, followed through
``from X import Y``), ``re.compile("...")``, ``timedelta(...)`` and ``+`` of those are
evaluated; anything else (a variable assigned twice, a call, an environment lookup)
becomes an :class:`Unknown` with its file:line, so the importer can list it as a TODO.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

_TIMEDELTA_SECONDS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


@dataclass(frozen=True)
class Where:
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Unknown:
    """A value the importer cannot evaluate statically."""

    where: Where
    text: str


@dataclass(frozen=True)
class Regex:
    """``re.compile(pattern)`` in the source: always a regex to Flask-CORS."""

    pattern: str


Settings = dict[str, tuple[Any, Where]]


@dataclass
class _Module:
    path: str
    tree: ast.Module
    imports: dict[str, str] = field(default_factory=dict)  # local name -> "module.name"
    assigned: dict[str, list[ast.expr]] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    defaults: dict[str, list[ast.expr]] = field(default_factory=dict)  # parameter defaults


class Evaluator:
    def __init__(self, trees: dict[str, ast.Module], paths: dict[str, str]) -> None:
        self.modules = {name: _index(paths[name], tree) for name, tree in trees.items()}
        self.views_pending: dict[str, tuple[Any, ...]] = {}
        self.todos: list[str] = []

    def where(self, module: str, node: ast.AST) -> Where:
        return Where(self.modules[module].path, getattr(node, "lineno", 0))

    # names ------------------------------------------------------------------------

    def callee(self, module: str, func: ast.expr) -> str | None:
        """The dotted name a call's function refers to (``flask_cors.CORS``), if evident."""
        imports = self.modules[module].imports
        if isinstance(func, ast.Name):
            return imports.get(func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            base = imports.get(func.value.id, func.value.id)
            return f"{base}.{func.attr}"
        return None

    def object_key(self, module: str, node: ast.expr) -> str:
        """A stable key for an app or blueprint object, followed across the files read."""
        if not isinstance(node, ast.Name):
            return ast.unparse(node)
        origin = self.modules[module].imports.get(node.id)
        if origin is not None:
            source, _, name = origin.rpartition(".")
            local = source.rpartition(".")[2]
            if local in self.modules:
                return self.object_key(local, ast.Name(name))
        return f"{module}:{node.id}"

    def _lookup(self, module: str, name: str) -> tuple[str, ast.expr] | Unknown | None:
        info = self.modules[module]
        origin = info.imports.get(name)
        if origin is not None:
            source, _, attr = origin.rpartition(".")
            local = source.rpartition(".")[2]
            return self._lookup(local, attr) if local in self.modules else None
        values = info.assigned.get(name, [])
        if len(values) == 1:
            return module, values[0]
        if len(values) > 1:
            return Unknown(self.where(module, values[-1]), f"{name} (assigned more than once)")
        return None

    # values ----------------------------------------------------------------------

    def value(self, module: str, node: ast.expr) -> Any:
        try:
            return self._value(module, node, 0)
        except _NotEvaluable as error:
            return Unknown(self.where(module, error.node), ast.unparse(error.node))

    def _value(self, module: str, node: ast.expr, depth: int) -> Any:
        if depth > 20:
            raise _NotEvaluable(node)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return [self._value(module, item, depth + 1) for item in node.elts]
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                raise _NotEvaluable(node)
            return {
                self._value(module, k, depth + 1): self._value(module, v, depth + 1)
                for k, v in zip(node.keys, node.values, strict=True)
                if k is not None
            }
        if isinstance(node, ast.Name):
            found = self._lookup(module, node.id)
            if found is None or isinstance(found, Unknown):
                raise _NotEvaluable(node)
            return self._value(found[0], found[1], depth + 1)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self._value(module, node.left, depth + 1)
            right = self._value(module, node.right, depth + 1)
            if type(left) is type(right) and isinstance(left, str | list):
                return left + right
        if isinstance(node, ast.Call):
            return self._call(module, node, depth)
        raise _NotEvaluable(node)

    def _call(self, module: str, node: ast.Call, depth: int) -> Any:
        name = self.callee(module, node.func)
        if name == "re.compile" and node.args:
            pattern = self._value(module, node.args[0], depth + 1)
            if isinstance(pattern, str) and len(node.args) == 1 and not node.keywords:
                return Regex(pattern)
        if name == "datetime.timedelta" and not node.args:
            total = 0.0
            for keyword in node.keywords:
                amount = self._value(module, keyword.value, depth + 1)
                unit = _TIMEDELTA_SECONDS.get(keyword.arg or "")
                if unit is None or not isinstance(amount, int | float):
                    raise _NotEvaluable(node)
                total += amount * unit
            return int(total)
        raise _NotEvaluable(node)

    # settings for config.from_object -----------------------------------------------

    def settings(self, module: str, node: ast.expr) -> Settings | Unknown:
        where = self.where(module, node)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return self._settings_by_name(node.value, where)
        if isinstance(node, ast.Name):
            return self._settings_for_name(module, node, where)
        return Unknown(where, ast.unparse(node))

    def _settings_for_name(self, module: str, node: ast.Name, where: Where) -> Settings | Unknown:
        if node.id == "__name__":  # from_object(__name__): this module's own settings
            return self._module_settings(module)
        info = self.modules[module]
        origin = info.imports.get(node.id)
        if origin is not None:
            return self._settings_by_name(origin, where)
        if node.id in info.classes:
            return self._class_settings(module, info.classes[node.id], 0)
        found = self._lookup(module, node.id)
        if found is not None and not isinstance(found, Unknown):
            return self.settings(*found)
        defaults = info.defaults.get(node.id, [])
        if len(defaults) == 1:
            # A factory's parameter (create_app(config=DevConfig)): gunicorn's
            # "app:create_app()" calls it with its default, so that is what is read.
            self.todos.append(
                f"{where}: note: from_object({node.id}) read with the parameter's default "
                f"{ast.unparse(defaults[0])}; another argument gives another policy"
            )
            return self.settings(module, defaults[0])
        return Unknown(where, node.id)

    def _settings_by_name(self, dotted: str, where: Where) -> Settings | Unknown:
        parts = dotted.replace(":", ".").split(".")
        if parts[-1] in self.modules:
            return self._module_settings(parts[-1])
        if len(parts) >= 2 and parts[-2] in self.modules:
            owner = self.modules[parts[-2]]
            if parts[-1] in owner.classes:
                return self._class_settings(parts[-2], owner.classes[parts[-1]], 0)
        return Unknown(where, repr(dotted) + " (pass its file to import)")

    def _module_settings(self, module: str) -> Settings:
        result: Settings = {}
        for name, value, where in self._assignments(module, self.modules[module].tree.body):
            result[name] = (value, where)
        return result

    def _assignments(self, module: str, body: list[ast.stmt]) -> list[tuple[str, Any, Where]]:
        """Upper-case names bound in ``body`` (``X = ...`` or ``X: T = ...``), evaluated."""
        out = []
        for node in body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign) and node.value is not None:
                targets = [node.target]
            value = getattr(node, "value", None)
            for target in targets:
                if isinstance(target, ast.Name) and target.id.isupper() and value is not None:
                    out.append((target.id, self.value(module, value), self.where(module, node)))
        return out

    def _class_settings(self, module: str, cls: ast.ClassDef, depth: int) -> Settings:
        result: Settings = {}
        for base in cls.bases:
            if isinstance(base, ast.Name) and depth < 10:
                owner = self.object_key(module, base).partition(":")
                base_module = self.modules.get(owner[0])
                if base_module is not None and owner[2] in base_module.classes:
                    cls_node = base_module.classes[owner[2]]
                    result.update(self._class_settings(owner[0], cls_node, depth + 1))
        for name, value, where in self._assignments(module, cls.body):
            result[name] = (value, where)
        return result


class _NotEvaluable(Exception):
    def __init__(self, node: ast.AST) -> None:
        super().__init__()
        self.node = node


def _index(path: str, tree: ast.Module) -> _Module:
    info = _Module(path, tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            for alias in node.names:
                info.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                info.imports[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ClassDef):
            info.classes[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    info.assigned.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            info.assigned.setdefault(node.target.id, []).append(node.value)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args.args[len(node.args.args) - len(node.args.defaults) :]
            for argument, default in zip(arguments, node.args.defaults, strict=True):
                info.defaults.setdefault(argument.arg, []).append(default)
    for cls in info.classes.values():  # class attributes are not module names
        for node in cls.body:
            value = getattr(node, "value", None)
            for values in info.assigned.values():
                if value is not None and value in values:
                    values.remove(value)
    return info
