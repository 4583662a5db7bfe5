import pytest
from sqlalchemy import text


def test_healthz_answers_ok(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_reports_the_database_migrations_and_storage(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json == {
        "status": "ready",
        "database": "ok",
        "migrations": "ok",
        "storage": "ok",
    }


def test_readyz_says_the_migrations_are_behind(client, session):
    [current] = session.scalars(text("SELECT version_num FROM alembic_version")).all()
    session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        response = client.get("/readyz")
    finally:
        session.rollback()
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.json["checks"]["migrations"] == (
        f"the database is at migration 0001, this code expects {current} (run `flask db upgrade`)"
    )
    assert "migrations: the database is at migration 0001" in response.json["detail"]


def test_readyz_says_the_documents_folder_takes_no_writes(app, client, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    settings = app.config["CRM"]
    saved = settings["DOCUMENTS_DIR"]
    settings["DOCUMENTS_DIR"] = str(blocker / "documents")
    try:
        response = client.get("/readyz")
    finally:
        settings["DOCUMENTS_DIR"] = saved
    assert response.status_code == 503
    assert response.json["checks"]["storage"].startswith(
        f"the documents folder {blocker / 'documents'} takes no writes"
    )
    assert response.json["checks"]["database"] == "ok"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_checks_need_no_credential(client, path):
    assert client.get(path).status_code == 200


def test_an_agency_submits_and_reads_back_a_referral(client, factory):
    from tests.factories import referral_payload

    agency = factory.agency()
    created = client.post("/api/v1/referrals", json=referral_payload(), headers=agency.headers())
    assert created.status_code == 201, created.json
    fetched = client.get(created.headers["Location"], headers=agency.headers())
    assert fetched.json["stage"] == "enquiry"
    assert fetched.json["history"][0]["to"] == "enquiry"
