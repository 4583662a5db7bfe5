"""The submit benchmark's second yardstick: a bare Flask + psycopg endpoint that writes the
rows a real submission writes, by hand, in one transaction.

Run by bench/api.py under gunicorn (`gunicorn baseline_same_rows:app`) against a copy of
the app's migrated template database (BENCH_BASELINE_DSN, a libpq URL), with the agency's
API key checked as the app checks it (prefix lookup, SHA-256, constant-time compare).
What it writes per request, as the app with `make run`'s rules does: the patient and its
two consents, the referral, its first stage transition, an audit event, the two fired
nudges, the private link and an SMS short link, the patient's SMS and email and the
coordinator's email, the SMS spend counters, and the message and stage rollups. No
validation beyond the JSON shape, no templates (fixed texts), no duplicate search, no
events: what the app does on top of this is what the ratio prices.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

import psycopg
from baseline_app import _db, healthz  # one connection per worker, as its twin
from flask import Flask, jsonify, request
from psycopg.types.json import Jsonb

app = Flask(__name__)
app.get("/healthz")(healthz)


def _agency(connection: psycopg.Connection) -> int | None:
    secret = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    row = connection.execute(
        "SELECT k.agency_id, k.key_hash FROM agency_api_keys k"
        " JOIN agencies a ON a.id = k.agency_id"
        " WHERE k.prefix = %s AND k.revoked_at IS NULL AND a.active",
        ("_".join(secret.split("_", 3)[:3]),),
    ).fetchone()
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return row[0] if row and hmac.compare_digest(row[1], digest) else None


@app.post("/referrals")
def submit():
    body = request.get_json()
    if not isinstance(body, dict) or not isinstance(body.get("patient"), dict):
        return jsonify(title="a JSON object with a patient is required"), 422
    patient, intake = body["patient"], body.get("intake") or {}
    connection = _db()
    now = datetime.now(UTC)
    with connection.transaction():
        agency_id = _agency(connection)
        if agency_id is None:
            return jsonify(title="unauthorised"), 401
        ids = _write(connection, body, patient, intake, agency_id, now)
    return (
        jsonify(id=ids["referral"], stage="enquiry", created_at=now.isoformat()),
        201,
        {"Location": f"/referrals/{ids['referral']}"},
    )


def _write(connection, body, patient, intake, agency_id, now) -> dict[str, int]:
    execute = connection.execute
    patient_id = execute(
        "INSERT INTO patients (agency_id, given_name, family_name, date_of_birth, sex, country,"
        " phone, email, language, time_zone) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
        (
            agency_id,
            patient["given_name"],
            patient["family_name"],
            patient.get("date_of_birth"),
            patient.get("sex", "unknown"),
            patient.get("country", ""),
            patient.get("phone"),
            patient.get("email"),
            patient.get("language", "en"),
            patient.get("time_zone", "UTC"),
        ),
    ).fetchone()[0]
    execute(
        "INSERT INTO patient_consents (patient_id, channel, granted, recorded_at, source)"
        " VALUES (%s,'sms',true,%s,'form'), (%s,'email',true,%s,'form')",
        (patient_id, now, patient_id, now),
    )
    referral_id = execute(
        "INSERT INTO referrals (patient_id, agency_id, attributed_agency_id, procedure_id, stage,"
        " stage_entered_at, agency_reference, complaints, symptom_duration_weeks,"
        " treatments_tried, pain_score, intake_notes, search_text)"
        " SELECT %s, %s, %s, id, 'enquiry', %s, %s, %s, %s, %s, %s, %s, %s FROM procedures"
        " WHERE code = %s RETURNING id",
        (
            patient_id,
            agency_id,
            agency_id,
            now,
            body.get("agency_reference"),
            Jsonb(intake.get("complaints", [])),
            intake.get("symptom_duration_weeks"),
            Jsonb(intake.get("treatments_tried", [])),
            intake.get("pain_score"),
            intake.get("notes", ""),
            f"{patient['given_name']} {patient['family_name']}".lower(),
            body["procedure"],
        ),
    ).fetchone()[0]
    execute(
        "INSERT INTO stage_transitions (referral_id, to_stage, actor_type, actor_id, actor_label,"
        " note, occurred_at) VALUES (%s,'enquiry','agency',%s,'agency','referral submitted',%s)",
        (referral_id, agency_id, now),
    )
    execute(
        "INSERT INTO audit_events (occurred_at, actor_type, actor_id, actor_label, action,"
        " referral_id, detail) VALUES (%s,'agency',%s,'agency','referral.create',%s,%s)",
        (now, agency_id, referral_id, Jsonb({"procedure": body["procedure"]})),
    )
    execute(
        "INSERT INTO scheduled_nudges (rule_id, referral_id, trigger_at, occurrence, due_at,"
        " status, created_at, finished_at) SELECT id, %s, %s, 0, %s, 'fired', %s, %s"
        " FROM nudge_rules WHERE active AND trigger = 'stage_entered' AND stage = 'enquiry'"
        " AND offset_minutes <= 0",
        (referral_id, now, now, now, now),
    )
    link_id = execute(
        "INSERT INTO patient_links (referral_id, nonce, created_at, expires_at)"
        " VALUES (%s,%s,%s,%s) RETURNING id",
        (referral_id, secrets.token_hex(16), now, now + timedelta(days=180)),
    ).fetchone()[0]
    key = f"nudge:enquiry_thank_you:{referral_id}:{now:%Y%m%dT%H%M%S%f}:0"
    execute(
        "INSERT INTO patient_short_links (link_id, code_hash, message_key, created_at, expires_at)"
        " VALUES (%s,%s,%s,%s,%s)",
        (link_id, secrets.token_hex(32), f"{key}:sms", now, now + timedelta(days=180)),
    )
    hour = now.replace(minute=0, second=0, microsecond=0)
    execute(
        "INSERT INTO sms_spend_counters (scope, window_start, sent) VALUES ('global',%s,1),"
        " (%s,%s,1) ON CONFLICT (scope, window_start) DO UPDATE"
        " SET sent = sms_spend_counters.sent + 1 RETURNING sent",
        (hour, f"agency:{agency_id}", hour.replace(hour=0)),
    ).fetchall()
    messages = [
        ("patient", "sms", patient.get("phone"), f"{key}:sms", 1),
        ("patient", "email", patient.get("email"), f"{key}:email", None),
        ("coordinator", "email", "coordinators@hospital.example", f"{key}:coord", None),
    ]
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO outbox_messages (idempotency_key, referral_id, agency_id, patient_id,"
            " audience, channel, kind, language, to_address, time_zone, subject, body_text,"
            " segments, status, attempts, next_attempt_at, rule_code, stage, stage_entered_at,"
            " stands, created_at) VALUES (%s,%s,%s,%s,%s,%s,'enquiry_received_patient','de',%s,"
            " 'Europe/Berlin','Your enquiry','We received your enquiry: https://h.example/s/x',"
            " %s,'queued',0,%s,'enquiry_thank_you','enquiry',%s,false,%s)",
            [
                (k, referral_id, agency_id, patient_id, who, ch, to or "", seg, now, now, now)
                for who, ch, to, k, seg in messages
            ],
        )
    execute(
        "INSERT INTO report_message_daily (day, channel, status, reason, agency_id,"
        " procedure_code, messages, segments) VALUES (%s,'sms','queued','',%s,%s,1,1),"
        " (%s,'email','queued','',%s,%s,2,0) ON CONFLICT (day, channel, status, reason,"
        " agency_id, procedure_code) DO UPDATE SET messages = report_message_daily.messages"
        " + excluded.messages, segments = report_message_daily.segments + excluded.segments",
        (now.date(), agency_id, body["procedure"], now.date(), agency_id, body["procedure"]),
    )
    execute(
        "INSERT INTO report_stage_daily (day, stage, reason, agency_id, procedure_code, entered)"
        " VALUES (%s,'enquiry','',%s,%s,1) ON CONFLICT (day, stage, reason, agency_id,"
        " procedure_code) DO UPDATE SET entered = report_stage_daily.entered + 1",
        (now.date(), agency_id, body["procedure"]),
    )
    return {"referral": referral_id, "patient": patient_id}
