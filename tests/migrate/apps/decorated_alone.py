"""``@cross_origin`` on views without any app-wide CORS."""

from flask import Blueprint, Flask
from flask_cors import cross_origin

ANY = ["GET", "POST", "PUT", "DELETE"]

app = Flask(__name__)
app.config.update({"CORS_SUPPORTS_CREDENTIALS": True, "CORS_EXPOSE_HEADERS": "X-Total-Count"})
api = Blueprint("api", __name__, url_prefix="/api/v1")


@api.route("/things", methods=ANY)
@cross_origin(origins=["http://localhost:3000", "https://app.example.com"])
def things() -> str:
    return "things"


@app.post("/hook")
@cross_origin(origins=["https://partner.example"], supports_credentials=False)
def hook() -> str:
    return "hook"


@app.route("/plain", methods=ANY)
def plain() -> str:
    return "no CORS"


app.register_blueprint(api)
