"""Fault tests: the app's real processes (gunicorn, the scheduler) on a PostgreSQL cluster
of their own, killed, starved and cut off on purpose. See docs/operations.md."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from crm.extensions import db
from crm.nudges.operations import load_rules
from tests.conftest import ROOT
from tests.factories import Caller, Factory
from tests.faults.cluster import Cluster, own_cluster
from tests.live import live_app


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with own_cluster() as started:
        yield started


@dataclass
class Seeded:
    url: str
    agency: Caller
    staff: Caller


@pytest.fixture(scope="session")
def template(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Migrated once: the catalogue and nudge rules loaded, an agency with a key and a
    coordinator with a token. Each test copies it (CREATE DATABASE ... TEMPLATE)."""
    url = cluster.createdb("faults_template")
    app = live_app(url, tmp_path_factory.mktemp("seed"))
    with app.app_context():
        load_rules(ROOT / "config" / "nudge_rules.toml")
        db.session.commit()
        factory = Factory(db.session)
        agency, staff = factory.agency(), factory.staff("coordinator")
        db.session.remove()
        db.engine.dispose()
    return Seeded(url, agency, staff)


@pytest.fixture
def seeded(cluster: Cluster, template: Seeded) -> Seeded:
    """A fresh copy of the template database for one test."""
    url = cluster.createdb(f"faults_{uuid.uuid4().hex[:8]}", template="faults_template")
    return Seeded(url, template.agency, template.staff)
