from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from crm.core.errors import problem
from crm.extensions import db

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@health.get("/readyz")
def readyz() -> Response:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        db.session.rollback()
        return problem(503, "not-ready", "Not ready", "The database is not reachable.")
    return jsonify(status="ready", database="ok")
