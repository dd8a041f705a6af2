"""Seed-style resources, copied from an old answer: a start-anchored regex origin,
``headers=`` and ``CORS_HEADERS`` (neither is a Flask-CORS option)."""

from flask import Flask
from flask_cors import CORS

ANY = ["GET", "POST", "PUT", "DELETE"]
SPA = "http://localhost:3000"

app = Flask(__name__)
app.config["CORS_HEADERS"] = "Content-Type"

CORS(
    app,
    resources={
        r"/api/*": {
            "origins": [SPA, r"https://.*\.example\.com"],
            "supports_credentials": True,
            "methods": ["GET", "POST", "PUT"],
            "allow_headers": ["Content-Type", "Authorization"],
            "expose_headers": "X-Total-Count",
            "max_age": 600,
        },
        r"/public/*": {"origins": "*", "send_wildcard": True},
    },
    headers="Content-Type",
)


@app.route("/api/items", methods=ANY)
def items() -> str:
    return "items"


@app.route("/api/items/<int:item_id>", methods=ANY)
def item(item_id: int) -> str:
    return f"item {item_id}"


@app.route("/public/status", methods=ANY)
def status() -> str:
    return "ok"


@app.route("/private", methods=ANY)
def private() -> str:
    return "no CORS here"
