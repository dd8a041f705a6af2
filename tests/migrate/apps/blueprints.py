"""Blueprints with their own CORS; the app's CORS_* config does not reach them."""

from flask import Blueprint, Flask
from flask_cors import CORS

ANY = ["GET", "POST", "PUT", "DELETE"]

app = Flask(__name__)
app.config["CORS_ORIGINS"] = ["http://localhost:3000"]
app.config["CORS_SUPPORTS_CREDENTIALS"] = True

partners = Blueprint("partners", __name__, url_prefix="/partners")
CORS(partners, origins=["https://partner.example"], methods=["GET", "PUT"])

reports = Blueprint("reports", __name__)
CORS(reports, resources={r"/v2/reports/public*": {"origins": "*"}})


@partners.route("/orders", methods=ANY)
def orders() -> str:
    return "orders"


@partners.route("/orders/<order_id>", methods=ANY)
def order(order_id: str) -> str:
    return order_id


@reports.route("/reports/public", methods=ANY)
def public_report() -> str:
    return "public"


@reports.route("/reports/internal", methods=ANY)
def internal_report() -> str:
    return "internal"


@app.route("/public/info", methods=ANY)
def info() -> str:
    return "info"


CORS(app, resources=r"/public/*")
app.register_blueprint(partners)
app.register_blueprint(reports, url_prefix="/v2")
