"""Config classes for the factory app (``app.config.from_object``)."""

from datetime import timedelta


class Config:
    CORS_ORIGINS = ["http://localhost:3000", "https://app.example.com"]
    CORS_SUPPORTS_CREDENTIALS = True
    CORS_ALLOW_HEADERS = ["Content-Type", "Authorization"]
    SECRET_KEY = "not-a-cors-setting"


class ProductionConfig(Config):
    CORS_METHODS = ["GET", "POST", "DELETE"]
    CORS_MAX_AGE = timedelta(minutes=10)
