"""Unsafe Flask-CORS settings: ``*`` with credentials, ``null``, a start-anchored regex."""

from flask import Flask
from flask_cors import CORS

ANY = ["GET", "POST", "PUT", "DELETE"]

app = Flask(__name__)
CORS(
    app,
    resources={
        r"/api/*": {"origins": "*", "supports_credentials": True},
        "/embed": {"origins": ["null", "http://localhost:3000"]},
        r"/partner/*": {"origins": r"https://partner\.example"},
    },
)


@app.route("/api/me", methods=ANY)
def me() -> str:
    return "me"


@app.route("/embed", methods=ANY)
def embed() -> str:
    return "embed"


@app.route("/partner/data", methods=ANY)
def partner() -> str:
    return "data"
