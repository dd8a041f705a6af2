"""proxy/importer.py: Flask-CORS usage read from sources with ast (never imported or run)."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from proxy.importer import SourceError, read_sources
from proxy.migrate_cli import run_import


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _run(*paths: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_import([str(p) for p in paths], None, out, err)
    return code, out.getvalue(), err.getvalue()


def test_the_sources_are_never_run(tmp_path: Path) -> None:
    app = _write(
        tmp_path,
        "app.py",
        """
        raise SystemExit("imported!")
        from flask import Flask
        from flask_cors import CORS
        app = Flask(__name__)
        CORS(app, origins=["http://localhost:3000"])
    """,
    )
    code, out, _ = _run(app)
    assert code == 0
    assert "- http://localhost:3000" in out


def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    app = _write(tmp_path, "app.py", "from flask import Flask\n\ndef broken(:\n")
    code, out, err = _run(app)
    assert code == 1 and out == ""
    assert err.startswith(f"{app}:3: syntax error")
    with pytest.raises(SourceError):
        read_sources([app])


def test_no_flask_cors_usage_exits_1(tmp_path: Path) -> None:
    app = _write(tmp_path, "app.py", "from flask import Flask\napp = Flask(__name__)\n")
    code, out, err = _run(app)
    assert code == 1 and out == ""
    assert "no Flask-CORS usage found" in err


def test_init_app_merges_constructor_and_init_kwargs(tmp_path: Path) -> None:
    app = _write(
        tmp_path,
        "app.py",
        """
        from flask import Flask
        from flask_cors import CORS as Cors
        cors = Cors(origins=["http://a.example"], methods=["GET"])
        def create_app():
            app = Flask(__name__)
            cors.init_app(app, methods=["GET", "PUT"])
            return app
    """,
    )
    usage = read_sources([app])
    [ext] = usage.extensions
    assert ext.target == "app:app" and not ext.is_blueprint
    assert ext.options["origins"].value == ["http://a.example"]
    assert ext.options["methods"].value == ["GET", "PUT"]


def test_config_set_after_cors_had_no_effect(tmp_path: Path) -> None:
    app = _write(
        tmp_path,
        "app.py",
        """
        from flask import Flask
        from flask_cors import CORS
        app = Flask(__name__)
        app.config["CORS_ORIGINS"] = ["http://early.example"]
        CORS(app)
        app.config["CORS_ORIGINS"] = ["http://late.example"]
    """,
    )
    code, out, err = _run(app)
    assert code == 0
    assert "- http://early.example" in out and "- http://late.example" not in out.split("#")[0]
    assert f"{app}:7: no effect: CORS_ORIGINS was set after CORS() read the config" in err


def test_unevaluable_values_are_todos_with_file_and_line(tmp_path: Path) -> None:
    app = _write(
        tmp_path,
        "app.py",
        """
        import os
        from flask import Flask
        from flask_cors import CORS
        app = Flask(__name__)
        CORS(app, origins=os.environ["ORIGINS"], supports_credentials=True)
    """,
    )
    code, out, err = _run(app)
    assert code == 0
    assert f"{app}:6: TODO: origins=os.environ['ORIGINS'] is not evaluated" in err
    assert "origins: []" in out  # nothing guessed: no origin until they are listed


def test_cross_origin_above_the_route_had_no_effect(tmp_path: Path) -> None:
    app = _write(
        tmp_path,
        "app.py",
        """
        from flask import Flask
        from flask_cors import cross_origin
        app = Flask(__name__)

        @cross_origin(origins=["http://a.example"])
        @app.route("/late")
        def late():
            return ""

        @app.route("/ok")
        @cross_origin(origins=["http://a.example"])
        def ok():
            return ""
    """,
    )
    usage = read_sources([app])
    stacks = {v.name: [s for _, s in v.stacks] for v in usage.views}
    assert stacks["app:late"] == [()]
    assert len(stacks["app:ok"][0]) == 1
    assert any("above the route decorator had no effect" in n for n in usage.no_effect)


def test_add_url_rule_with_a_wrapped_view_and_blueprint_prefixes(tmp_path: Path) -> None:
    views = _write(
        tmp_path,
        "views.py",
        """
        from flask import Blueprint
        from flask_cors import cross_origin
        bp = Blueprint("bp", __name__, url_prefix="/own")
        def feed():
            return ""
        bp.add_url_rule("/feed", "feed", view_func=cross_origin(origins="*")(feed))
    """,
    )
    app = _write(
        tmp_path,
        "app.py",
        """
        from flask import Flask
        from pkg.views import bp as views_bp
        app = Flask(__name__)
        app.register_blueprint(views_bp, url_prefix="/mounted")
    """,
    )
    code, out, _ = _run(app, views)
    assert code == 0
    assert "- path: /mounted/feed" in out


def test_keyword_app_string_and_list_resources_and_module_settings(tmp_path: Path) -> None:
    app = _write(
        tmp_path,
        "app.py",
        """
        from flask import Flask
        from flask_cors import CORS
        CORS_ORIGINS = ["http://settings.example"]
        app = Flask(__name__)
        app.config.from_object(__name__)
        CORS(app=app, resources=r"/api/*")
        other = Flask("other")
        other.config.from_mapping(CORS_SUPPORTS_CREDENTIALS=True)
        CORS(other, resources=["/a", r"/b/.*"], origins=["http://o.example"])
    """,
    )
    code, out, err = _run(app)
    assert code == 0, err
    assert "- regex: /api/*" in out and "- http://settings.example" in out
    assert "- path: /a\n" in out and "- regex: /b/.*\n" in out
    assert out.count("supports_credentials: true") == 2  # /a and /b/.* of the other app


def test_a_cross_origin_the_importer_cannot_place_is_a_todo(tmp_path: Path) -> None:
    app = _write(
        tmp_path,
        "app.py",
        """
        from flask import Flask
        from flask.views import MethodView
        from flask_cors import CORS, cross_origin
        app = Flask(__name__)
        CORS(app, resources=r"/api/*", origins=["http://a.example"])

        class Items(MethodView):
            decorators = [cross_origin(origins="*")]
            def get(self):
                return ""

        app.add_url_rule("/items", view_func=Items.as_view("items"))
    """,
    )
    code, _, err = _run(app)
    assert code == 0
    assert f"{app}:9: TODO: this @cross_origin is not on a URL rule the importer can follow" in err


def test_two_decorated_views_on_one_rule_are_a_todo(tmp_path: Path) -> None:
    app = _write(
        tmp_path,
        "app.py",
        """
        from flask import Flask
        from flask_cors import cross_origin
        app = Flask(__name__)

        @app.get("/x")
        @cross_origin(origins=["http://a.example"])
        def read():
            return ""

        @app.post("/x")
        @cross_origin(origins=["http://b.example"])
        def write():
            return ""
    """,
    )
    code, _, err = _run(app)
    assert code == 0
    assert f"{app}:11: TODO: another decorated view has the rule /x" in err
