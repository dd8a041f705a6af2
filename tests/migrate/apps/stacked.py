"""Stacked ``@cross_origin``: the outer one answers preflights, the inner one the rest."""

from flask import Flask
from flask_cors import cross_origin

ANY = ["GET", "POST", "PUT", "DELETE"]

app = Flask(__name__)


@app.route("/api/stacked", methods=ANY)
@cross_origin(
    origins=["http://localhost:3000", "https://partner.example"],
    methods=["GET", "PUT", "DELETE"],
    allow_headers=["Content-Type", "Authorization"],
    supports_credentials=True,
)
@cross_origin(origins=["http://localhost:3000"], methods=["GET"], supports_credentials=True)
def stacked() -> str:
    return "stacked"


@app.route("/api/single", methods=ANY)
@cross_origin(origins=["https://partner.example"], methods=["PUT"])
def single() -> str:
    return "single"
