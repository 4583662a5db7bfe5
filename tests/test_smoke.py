def test_healthz_answers_ok(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_reports_the_database_reachable(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["database"] == "ok"


def test_an_agency_submits_and_reads_back_a_referral(client, factory):
    from tests.factories import referral_payload

    agency = factory.agency()
    created = client.post("/api/v1/referrals", json=referral_payload(), headers=agency.headers())
    assert created.status_code == 201, created.json
    fetched = client.get(created.headers["Location"], headers=agency.headers())
    assert fetched.json["stage"] == "enquiry"
    assert fetched.json["history"][0]["to"] == "enquiry"
