"""The whole schema comes from migrations: from an empty database up, equal to the models, and down.

Each test gets a database of its own: a fresh SQLite file, or, when CRM_TEST_DATABASE_URL
points at PostgreSQL, a scratch database created for the test and dropped after it.
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from crm import create_app
from crm.extensions import db
from tests.conftest import ON_POSTGRES, ROOT, TEST_DATABASE_URL

MIGRATIONS = str(ROOT / "migrations")


def _admin_conninfo(url) -> dict:
    return {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
        "dbname": "postgres",
        "autocommit": True,
    }


@pytest.fixture
def empty_database_url(tmp_path) -> Iterator[str]:
    if not ON_POSTGRES:
        yield "sqlite:///" + str(tmp_path / "migrations.sqlite3")
        return
    base = make_url(TEST_DATABASE_URL)
    name = f"crm_migrations_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**_admin_conninfo(base)) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(**_admin_conninfo(base)) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def scratch_app(empty_database_url) -> Iterator[Flask]:
    app = create_app(
        {
            "ENV": "test",
            "DATABASE_URL": empty_database_url,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-123",
        }
    )
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def _tables() -> set[str]:
    return set(inspect(db.engine).get_table_names())


def _differences() -> list:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": False}
        )
        with warnings.catch_warnings():
            # SQLite cannot reflect an expression index (patients' lower(email), made on
            # PostgreSQL only, where it is compared): that one comparison is skipped there.
            warnings.filterwarnings(
                "ignore", message=".*expression-based index 'ix_patients_email_folded'"
            )
            return compare_metadata(context, db.metadata)


def test_upgrade_from_an_empty_database_matches_the_models(scratch_app):
    assert _tables() == set()
    assert any(diff[0] == "add_table" for diff in _differences())  # the comparison sees tables
    upgrade(directory=MIGRATIONS)
    assert set(db.metadata.tables) <= _tables()
    assert _differences() == []


def test_the_migrated_schema_enforces_the_constraints_in_the_database(scratch_app):
    upgrade(directory=MIGRATIONS)
    checks = {c["name"] for c in inspect(db.engine).get_check_constraints("referrals")}
    assert {
        "ck_referrals_stage",
        "ck_referrals_lost_has_reason",
        "ck_referrals_pain_score",
    } <= checks
    uniques = inspect(db.engine).get_unique_constraints("referrals")
    assert any(set(u["column_names"]) == {"agency_id", "agency_reference"} for u in uniques)
    foreign = {fk["referred_table"] for fk in inspect(db.engine).get_foreign_keys("referrals")}
    assert {"patients", "agencies", "procedures", "staff_users"} <= foreign
    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO agencies (name, country, commission_basis_points, active, "
                "created_at, updated_at) VALUES ('Too Greedy', 'DE', 20000, true, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )


def test_downgrade_to_base_removes_every_table(scratch_app):
    upgrade(directory=MIGRATIONS)
    downgrade(directory=MIGRATIONS, revision="base")
    assert _tables() <= {"alembic_version"}


def test_upgrade_after_a_downgrade_works_again(scratch_app):
    upgrade(directory=MIGRATIONS)
    downgrade(directory=MIGRATIONS, revision="base")
    upgrade(directory=MIGRATIONS)
    assert _differences() == []


def _procedure_as_at_0012(connection, since_0016: bool = False) -> None:
    """The microdiscectomy row in the columns the table had before 0018 (the ORM model
    is today's, so an old schema is written in SQL); 0016 added the per-language texts."""
    texts = ("patient_information", "pre_travel_checklist", "pre_operative_instructions")
    extra_columns = "".join(f", {name}" for name in texts) if since_0016 else ""
    extra_values = ", '{}', '{}', '{}'" if since_0016 else ""
    connection.execute(
        text(
            f"INSERT INTO procedures (code, name, specialty, summary, candidates, requires_mri,"
            " anaesthesia, duration_minutes_min, duration_minutes_max, hospital_nights_min,"
            " hospital_nights_max, recovery_weeks_min, recovery_weeks_max,"
            " arrive_days_before_admission, nights_in_city_after_discharge, prerequisites,"
            " typical_complaints, conservative_treatments, risks_discussed,"
            f" follow_up_schedule, active, created_at, updated_at{extra_columns}) VALUES"
            " ('microdiscectomy', 'Microdiscectomy', 'Spine surgery', '', '', true, 'general',"
            " 45, 60, 1, 2, 4, 6, 1, 3, '[]', '[]', '[]', '',"
            ' \'[{"label": "day_1", "offset_days": 1}]\', true, CURRENT_TIMESTAMP,'
            f" CURRENT_TIMESTAMP{extra_values})"
        )
    )


def test_upgrading_keeps_check_in_answers_and_the_disc_level_readable(scratch_app):
    """0018: the answer columns become `answers` keyed by question code, the review's
    disc level a key of `procedure_fields`."""
    upgrade(directory=MIGRATIONS, revision="0017")
    with db.engine.begin() as connection:
        _procedure_as_at_0012(connection, since_0016=True)
        connection.execute(
            text(
                "INSERT INTO patients (given_name, family_name, sex, country, language,"
                " time_zone, created_at, updated_at) VALUES ('Ana', 'Old', 'female', 'DE',"
                " 'de', 'Europe/Berlin', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO referrals (patient_id, procedure_id, stage, stage_entered_at,"
                " complaints, treatments_tried, intake_notes, search_text, created_at,"
                " updated_at) SELECT p.id, pr.id, 'follow_up', CURRENT_TIMESTAMP, '[]', '[]',"
                " '', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM patients p, procedures pr"
            )
        )
        connection.execute(
            text(
                "INSERT INTO check_ins (referral_id, label, position, due_at, answered_at,"
                " back_pain, leg_pain, numbness, weakness, wound, bladder_or_bowel_trouble,"
                " saddle_numbness, fever, free_text, alert, created_at) SELECT id, 'day_1', 0,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 3, 8, false, true, 'red_or_swollen',"
                " false, false, NULL, 'sore', 'high_score', CURRENT_TIMESTAMP FROM referrals"
            )
        )
        connection.execute(
            text(
                "INSERT INTO reviews (referral_id, specialist_label, decision, findings,"
                " disc_level, risks_to_discuss, notes, created_at) SELECT id, 'Dr A',"
                " 'candidate', '', 'L4-L5', '', '', CURRENT_TIMESTAMP FROM referrals"
            )
        )
    upgrade(directory=MIGRATIONS)
    with db.engine.connect() as connection:
        answers, free_text = connection.execute(
            text("SELECT answers, free_text FROM check_ins")
        ).one()
        fields = connection.execute(text("SELECT procedure_fields FROM reviews")).scalar_one()
    # raw SQL: SQLite hands JSON back as its text, PostgreSQL as the value
    answers, fields = (json.loads(v) if isinstance(v, str) else v for v in (answers, fields))
    assert answers == {
        "back_pain": 3,
        "leg_pain": 8,
        "numbness": False,
        "weakness": True,
        "wound": "red_or_swollen",
        "bladder_or_bowel_trouble": False,
        "saddle_numbness": False,
    }  # fever was never asked of this one (NULL): no answer, not "no"
    assert free_text == "sore"
    assert fields == {"disc_level": "L4-L5"}
    assert _differences() == []


def test_upgrading_fills_the_search_text_of_referrals_already_stored(scratch_app):
    upgrade(directory=MIGRATIONS, revision="0008")
    with db.engine.begin() as connection:
        _procedure_as_at_0012(connection)
        patient_id = connection.execute(
            text(
                "INSERT INTO patients (given_name, family_name, sex, country, phone, email,"
                " language, time_zone, created_at, updated_at) VALUES ('José', 'Müller',"
                " 'male', 'DE', '+4915198765432', 'Jose@Example.com', 'de', 'Europe/Berlin',"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
            )
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO referrals (patient_id, procedure_id, stage, stage_entered_at,"
                " agency_reference, complaints, treatments_tried, intake_notes, created_at,"
                " updated_at) SELECT :patient, id, 'enquiry', CURRENT_TIMESTAMP, 'BMT-7',"
                " '[]', '[]', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM procedures"
                " WHERE code = 'microdiscectomy'"
            ),
            {"patient": patient_id},
        )
    upgrade(directory=MIGRATIONS)
    with db.engine.connect() as connection:
        stored = connection.execute(text("SELECT search_text FROM referrals")).scalar_one()
    assert stored == "jose muller jose@example.com 4915198765432 015198765432 bmt-7"


def test_upgrading_marks_a_callers_source_worded_like_the_patients_own(scratch_app):
    upgrade(directory=MIGRATIONS, revision="0032")
    sources = {
        "sms": "Patient-Page",  # an agency's wording, before it was reserved
        "email": "unsubscribe link",  # the application's own
        "whatsapp": "SMS-keyword (form)",
    }
    with db.engine.begin() as connection:
        patient_id = connection.execute(
            text(
                "INSERT INTO patients (given_name, family_name, sex, country, phone, email,"
                " language, time_zone, created_at, updated_at) VALUES ('Ana', 'Ruiz', 'female',"
                " 'ES', '+34600000001', 'ana@example.com', 'es', 'Europe/Madrid',"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
            )
        ).scalar_one()
        other_id = connection.execute(
            text(
                "INSERT INTO patients (given_name, family_name, sex, country, phone,"
                " language, time_zone, created_at, updated_at) VALUES ('Bo', 'Li', 'male',"
                " 'CN', '+8613800000001', 'zh', 'Asia/Shanghai', CURRENT_TIMESTAMP,"
                " CURRENT_TIMESTAMP) RETURNING id"
            )
        ).scalar_one()
        rows = [(patient_id, channel, source) for channel, source in sources.items()]
        rows += [(other_id, "sms", "sms keyword (SM0123)"), (other_id, "email", "signed form")]
        for owner, channel, source in rows:
            connection.execute(
                text(
                    "INSERT INTO patient_consents (patient_id, channel, granted, recorded_at,"
                    " source) VALUES (:p, :c, false, CURRENT_TIMESTAMP, :s)"
                ),
                {"p": owner, "c": channel, "s": source},
            )
    upgrade(directory=MIGRATIONS)
    with db.engine.connect() as connection:
        stored = dict(
            connection.execute(
                text("SELECT patient_id || ':' || channel, source FROM patient_consents")
            ).all()
        )
    assert stored == {
        f"{patient_id}:sms": "as given: Patient-Page",
        f"{patient_id}:email": "unsubscribe link",
        f"{patient_id}:whatsapp": "as given: SMS-keyword (form)",
        f"{other_id}:sms": "sms keyword (SM0123)",
        f"{other_id}:email": "signed form",
    }


@pytest.mark.parametrize(
    "source",
    ["Patient-Page", " sms  KEYWORD", "subscribed again (x)", "patient pager", "form", "ok"],
)
def test_the_0035_copy_of_the_patients_own_wording_agrees_with_the_application(source):
    import importlib.util

    from crm.patients.consent_sources import by_the_patient

    path = ROOT / "migrations" / "versions" / "0035_consent_sources_as_given.py"
    spec = importlib.util.spec_from_file_location("migration_0035", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.given_by_a_caller(source) == by_the_patient(source)
