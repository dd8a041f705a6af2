"""A factory: ``CORS()`` at import time, ``init_app`` in ``create_app`` with config classes."""

from flask import Blueprint, Flask
from flask_cors import CORS

from tests.migrate.apps.factory_settings import ProductionConfig

ANY = ["GET", "POST", "PUT", "DELETE"]

cors = CORS(resources={r"/api/*": {}, r"/status": {"origins": "*"}})
api = Blueprint("api", __name__)


@api.route("/items", methods=ANY)
def items() -> str:
    return "items"


def create_app(config_class: type = ProductionConfig) -> Flask:
    app = Flask(__name__)
    app.config.from_object(config_class)
    app.config.update(CORS_EXPOSE_HEADERS=["X-Total-Count"])
    app.register_blueprint(api, url_prefix="/api")
    app.add_url_rule("/status", "status", lambda: "ok", methods=ANY)
    app.add_url_rule("/other", "other", lambda: "no CORS", methods=ANY)
    cors.init_app(app)
    app.config["CORS_ORIGINS"] = "*"  # too late: CORS() already read the config
    return app
