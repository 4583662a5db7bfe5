"""`/healthz` (the process answers) and `/readyz` (it can serve: the database answers, its
schema is at the migrations this code expects, the documents folder takes writes). A
503 names every check that failed and why, so an operator reads the cause, not a code."""

from __future__ import annotations

import logging
import os
import tempfile
from functools import lru_cache

from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from crm.core.errors import problem
from crm.extensions import db

log = logging.getLogger(__name__)
health = Blueprint("health", __name__)
OK = "ok"


@health.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@health.get("/readyz")
def readyz() -> Response:
    checks = {"database": _database()}
    checks["migrations"] = _migrations() if checks["database"] == OK else "not checked"
    checks["storage"] = _storage()
    failing = {name: why for name, why in checks.items() if why not in {OK, "not checked"}}
    if failing:
        log.warning("not ready: %s", failing)
        detail = "; ".join(f"{name}: {why}" for name, why in failing.items())
        return problem(503, "not-ready", "Not ready", detail, checks=checks)
    return jsonify(status="ready", **checks)


def _database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return "the database is not reachable"
    return OK


@lru_cache(maxsize=4)
def _expected_heads(directory: str) -> frozenset[str]:
    return frozenset(ScriptDirectory(directory).get_heads())


def _migrations() -> str:
    expected = _expected_heads(current_app.extensions["migrate"].directory)
    try:
        found = set(db.session.scalars(text("SELECT version_num FROM alembic_version")))
    except SQLAlchemyError:
        db.session.rollback()
        return "the database has no migrations applied (run `flask db upgrade`)"
    if found == expected:
        return OK
    at, wants = ", ".join(sorted(found)) or "none", ", ".join(sorted(expected))
    return f"the database is at migration {at}, this code expects {wants} (run `flask db upgrade`)"


def _storage() -> str:
    """The documents store's own answer (local folder or S3 bucket), when the documents
    feature installed one; else the configured folder takes a write."""
    probe = current_app.extensions.get("crm.storage_readiness")
    if probe is not None:
        try:
            return probe() or OK
        except Exception as exc:  # a store that cannot even be built (a bad setting)
            log.warning("documents store unavailable", exc_info=True)
            return f"the documents store is unavailable ({type(exc).__name__})"
    folder = current_app.config["CRM"]["DOCUMENTS_DIR"]
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ready-"):
            pass
    except OSError as exc:
        return f"the documents folder {folder} takes no writes ({exc.strerror or exc})"
    return OK
