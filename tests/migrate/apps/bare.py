"""Bare ``CORS(app)``: every path, every origin reflected, every method and header."""

from flask import Flask
from flask_cors import CORS

ANY = ["GET", "POST", "PUT", "DELETE"]

app = Flask(__name__)
CORS(app)


@app.route("/api/items", methods=ANY)
def items() -> str:
    return "items"


@app.route("/api/items/<int:item_id>", methods=ANY)
def item(item_id: int) -> str:
    return f"item {item_id}"
