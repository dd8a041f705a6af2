"""``@cross_origin`` on views, next to app-wide CORS: the decorator wins on its views."""

from flask import Flask
from flask_cors import CORS, cross_origin

ANY = ["GET", "POST", "PUT", "DELETE"]

app = Flask(__name__)
CORS(app, resources={r"/api/*": {"origins": ["http://localhost:3000"]}})


@app.route("/api/items", methods=ANY)
def items() -> str:
    return "items"


@app.route("/api/widget/<int:widget_id>", methods=ANY)
@cross_origin(origins=["https://partner.example"], supports_credentials=True, methods=["GET"])
def widget(widget_id: int) -> str:
    return f"widget {widget_id}"


@cross_origin(origins="*", allow_headers=["X-Custom"])
def feed() -> str:
    return "feed"


app.add_url_rule("/feed", "feed", feed, methods=ANY)


@cross_origin(origins=["http://localhost:3000"])  # above the route: no effect
@app.route("/late", methods=ANY)
def late() -> str:
    return "late"
