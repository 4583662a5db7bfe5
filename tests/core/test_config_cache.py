"""The per-process caches of the catalogue, the nudge rules and the template overrides:
read once per process, invalidated on every process when an admin changes them.

Two apps on one database stand for two processes (each app keeps its own caches): one
serves a change, the other must see it in its next transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from sqlalchemy import event, select, update

from crm.catalogue.models import Procedure
from crm.catalogue.queries import procedure_by_code
from crm.core.actors import SYSTEM
from crm.core.cache import ConfigGeneration
from crm.core.errors import NotFound
from crm.extensions import db
from crm.messaging.composing.overrides import catalogue_for, save_override, sms_sample_context
from crm.nudges.operations import active_rules, load_rules, update_rule
from tests.conftest import TEST_DATABASE_URL
from tests.live import ROOT, live_app, scratch_database

CODE = "microdiscectomy"
RENAMED = "knee_replacement"  # changed by one test only


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if TEST_DATABASE_URL:
        with scratch_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('cache') / 'shared.sqlite3'}"


@pytest.fixture(scope="module")
def two_processes(
    database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Flask, Flask]]:
    """Each test changes rows of its own (a procedure, a rule, a template kind)."""
    first = live_app(database, tmp_path_factory.mktemp("first"))
    second = live_app(database, tmp_path_factory.mktemp("second"))
    with first.app_context():
        load_rules(ROOT / "config" / "nudge_rules.toml")
        db.session.commit()
        db.session.remove()
    yield first, second
    for app in (first, second):
        with app.app_context():
            db.engine.dispose()


@contextmanager
def transaction(app: Flask) -> Iterator[list[str]]:
    """One unit of work on `app`, committed; the statements it ran."""
    with app.app_context():
        statements: list[str] = []
        connection = db.session.connection()
        event.listen(connection, "before_cursor_execute", _recorder(statements))
        try:
            yield statements
            db.session.commit()
        finally:
            db.session.remove()


def _recorder(statements: list[str]):
    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    return record


def test_a_cached_read_costs_the_token_and_nothing_else(two_processes):
    first, _ = two_processes
    with transaction(first):
        procedure_by_code(CODE)
        active_rules("stage_entered", "enquiry")
        catalogue_for("enquiry_received_patient")
    with transaction(first) as statements:
        assert procedure_by_code(CODE).code == CODE
        assert active_rules("stage_entered", "enquiry")
        catalogue_for("enquiry_received_patient")
    assert len(statements) == 1 and "config_generation" in statements[0], statements


def test_a_procedure_changed_on_one_process_is_seen_by_the_other(two_processes):
    first, second = two_processes
    with transaction(first):
        before = procedure_by_code(RENAMED).name
    with transaction(second):
        procedure = db.session.scalar(select(Procedure).where(Procedure.code == RENAMED))
        procedure.name = "Knee replacement (renamed)"
    with transaction(first):
        assert procedure_by_code(RENAMED).name == "Knee replacement (renamed)" != before
    with transaction(second):
        db.session.execute(update(Procedure).where(Procedure.code == RENAMED).values(active=False))
    with transaction(first), pytest.raises(NotFound):
        procedure_by_code(RENAMED)


def test_a_rule_switched_off_by_the_api_operation_stops_on_every_process(two_processes):
    first, second = two_processes
    with transaction(first):
        codes = {rule.code for rule in active_rules("stage_entered", "enquiry")}
    assert "enquiry_thank_you" in codes
    with transaction(second):
        update_rule("enquiry_thank_you", {"active": False}, SYSTEM)
    with transaction(first):
        codes = {rule.code for rule in active_rules("stage_entered", "enquiry")}
    assert "enquiry_thank_you" not in codes


def test_a_template_override_saved_on_one_process_renders_on_the_other(two_processes):
    first, second = two_processes
    with transaction(first):
        context = {**sms_sample_context(), "hospital_name": "H"}
        catalogue_for("ad_hoc")
    with transaction(second):
        save_override("ad_hoc", "en", "subject", "A new subject for {{ hospital_name }}", SYSTEM)
    with transaction(first):
        rendered = catalogue_for("ad_hoc").render("ad_hoc", "email", "en", context)
    assert rendered.subject == "A new subject for H"


def test_a_rolled_back_change_is_never_served_from_a_cache(two_processes):
    first, _ = two_processes
    with first.app_context():
        db.session.execute(update(Procedure).where(Procedure.code == CODE).values(name="Draft"))
        assert procedure_by_code(CODE).name == "Draft"  # this transaction sees its own change
        db.session.rollback()
        assert procedure_by_code(CODE).name != "Draft"
        db.session.remove()


def test_writes_elsewhere_keep_the_token(two_processes):
    first, _ = two_processes
    with transaction(first):
        token = db.session.scalar(select(ConfigGeneration.token))
    with transaction(first):
        procedure_by_code(CODE)
        active_rules("stage_entered", "enquiry")
    with transaction(first):
        assert db.session.scalar(select(ConfigGeneration.token)) == token
