"""The benchmark's yardstick: a bare Flask + psycopg app whose POST does one INSERT.

Run by bench/api.py under gunicorn (`gunicorn bench.baseline_app:app`) against a scratch
database named by BENCH_BASELINE_DSN (a libpq URL). The table is created by bench/api.py:

    CREATE TABLE bench_items (
        id bigserial PRIMARY KEY,
        reference text NOT NULL,
        body jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )

One connection per worker process (gunicorn sync workers serve one request at a time).
"""

from __future__ import annotations

import os

import psycopg
from flask import Flask, jsonify, request
from psycopg.types.json import Jsonb

app = Flask(__name__)
_connection: psycopg.Connection | None = None


def _db() -> psycopg.Connection:
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(os.environ["BENCH_BASELINE_DSN"])
    return _connection


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


@app.post("/items")
def create_item():
    body = request.get_json()
    if not isinstance(body, dict):
        return jsonify(title="a JSON object is required"), 422
    reference = str(body.get("agency_reference") or "")
    connection = _db()
    with connection.transaction():
        row = connection.execute(
            "INSERT INTO bench_items (reference, body) VALUES (%s, %s) RETURNING id, created_at",
            (reference, Jsonb(body)),
        ).fetchone()
    assert row is not None
    item_id, created_at = row
    return (
        jsonify(id=item_id, reference=reference, created_at=created_at.isoformat()),
        201,
        {"Location": f"/items/{item_id}"},
    )
