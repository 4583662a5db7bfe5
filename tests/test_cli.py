"""`flask --app wsgi crm ...`: agencies and keys, staff and tokens, the catalogue, demo data."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from crm.agencies.models import Agency
from crm.auth.models import AgencyApiKey, StaffUser
from crm.catalogue.models import Procedure
from crm.demo import AGENCIES, PATIENTS, STAFF
from crm.referrals.models import Referral
from crm.referrals.stages import ALL_STAGES

API = "/api/v1"


@pytest.fixture
def run(app, session):
    """Run `crm <args>` in this test's transaction; returns the click Result."""
    runner = app.test_cli_runner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(args=["crm", *args])
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    return invoke


def _last_line(result) -> str:
    return result.stdout.strip().splitlines()[-1]


def _works(client, secret: str) -> bool:
    response = client.get(f"{API}/referrals", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code in {200, 401}
    return response.status_code == 200


def test_create_agency_prints_its_key_alone_on_the_last_line(run, client, session):
    result = run("create-agency", "Anatolia Health Partners", "--country", "tr")
    key = _last_line(result)
    assert key.startswith("crm_ak_")
    assert " " not in key
    assert _works(client, key)
    agency = session.scalar(select(Agency).where(Agency.name == "Anatolia Health Partners"))
    assert agency.country == "TR"
    assert "shown once" in result.stderr


def test_create_agency_refuses_a_duplicate_name(run):
    run("create-agency", "Twice Ltd", "--country", "DE")
    result = run("create-agency", "Twice Ltd", "--country", "DE", ok=False)
    assert result.exit_code != 0
    assert "exists already" in result.output


def test_create_key_issues_another_working_key(run, client):
    first = _last_line(run("create-agency", "Keyful GmbH", "--country", "DE"))
    second = _last_line(run("create-key", "Keyful GmbH", "--label", "erp"))
    assert second != first
    assert second.startswith("crm_ak_")
    assert _works(client, first) and _works(client, second)


def test_create_key_for_an_unknown_agency_fails_with_a_message(run):
    result = run("create-key", "Nobody Inc", ok=False)
    assert result.exit_code != 0
    assert "no agency named" in result.output


def test_list_keys_shows_prefixes_and_never_a_secret(run, client):
    first = _last_line(run("create-agency", "Listed Ltd", "--country", "GB"))
    second = _last_line(run("create-key", "Listed Ltd", "--label", "backup"))
    _works(client, first)
    output = run("list-keys", "Listed Ltd").output
    lines = output.strip().splitlines()
    assert len(lines) == 2
    for secret, line in zip((first, second), lines, strict=True):
        prefix = "_".join(secret.split("_", 3)[:3])
        assert line.startswith(prefix)
        assert secret not in output
        assert secret.split("_", 3)[3] not in output
    assert "backup" in lines[1]
    assert "never" in lines[1]
    assert "never" not in lines[0]
    assert all(line.endswith("active") for line in lines)


def test_revoke_key_makes_it_401_and_list_keys_shows_it(run, client):
    key = _last_line(run("create-agency", "Revoked Ltd", "--country", "DE"))
    assert _works(client, key)
    prefix = "_".join(key.split("_", 3)[:3])
    assert f"revoked {prefix}" in run("revoke-key", prefix).output
    assert not _works(client, key)
    assert "revoked" in run("list-keys", "Revoked Ltd").output.split("\t")[-1]


def test_revoking_an_unknown_prefix_fails_with_a_message(run):
    result = run("revoke-key", "crm_ak_00000000", ok=False)
    assert result.exit_code != 0
    assert "crm_ak_00000000" in result.output


def test_create_staff_prints_a_working_token(run, client, session):
    result = run(
        "create-staff", "Nurse@Hospital.example", "--name", "Deniz Nurse", "--role", "coordinator"
    )
    token = _last_line(result)
    assert token.startswith("crm_st_")
    assert _works(client, token)
    user = session.scalar(select(StaffUser).where(StaffUser.email == "nurse@hospital.example"))
    assert (user.name, user.role, user.password_hash) == ("Deniz Nurse", "coordinator", None)


def test_create_staff_with_a_password_stores_an_argon2_hash(run, session):
    run(
        "create-staff",
        "boss@hospital.example",
        "--name",
        "Boss",
        "--role",
        "manager",
        "--password",
        "correct horse battery",
    )
    user = session.scalar(select(StaffUser).where(StaffUser.email == "boss@hospital.example"))
    assert user.password_hash.startswith("$argon2")
    assert "correct horse" not in user.password_hash


def test_create_staff_refuses_a_short_password_and_creates_nobody(run, session):
    result = run(
        "create-staff", "weak@hospital.example", "--name", "W", "--role", "admin",
        "--password", "short", ok=False,
    )  # fmt: skip
    assert result.exit_code != 0
    assert "12 characters" in result.output
    session.expire_all()
    assert (
        session.scalar(select(StaffUser).where(StaffUser.email == "weak@hospital.example")) is None
    )


def test_create_staff_refuses_an_unknown_role(run):
    result = run("create-staff", "x@hospital.example", "--name", "X", "--role", "janitor", ok=False)
    assert result.exit_code != 0
    assert "janitor" in result.output


def test_create_token_issues_another_working_token(run, client):
    run("create-staff", "tok@hospital.example", "--name", "Tok", "--role", "specialist")
    token = _last_line(run("create-token", "tok@hospital.example"))
    assert _works(client, token)


_EXTRA_PROCEDURE = """
[[procedure]]
code = "test_rhinoplasty"
name = "Rhinoplasty"
specialty = "Plastic surgery"
anaesthesia = "general"
duration_minutes_min = 90
duration_minutes_max = 180
hospital_nights_min = 0
hospital_nights_max = 1
recovery_weeks_min = 1
recovery_weeks_max = 2
"""


def test_load_catalogue_is_idempotent(run, session, tmp_path):
    path = tmp_path / "procedures.toml"
    path.write_text(_EXTRA_PROCEDURE)
    assert "1 created, 0 updated" in run("load-catalogue", "--file", str(path)).output
    count = session.scalar(select(func.count(Procedure.id)))
    assert "0 created, 1 updated" in run("load-catalogue", "--file", str(path)).output
    session.expire_all()
    assert session.scalar(select(func.count(Procedure.id))) == count
    rhinoplasty = session.scalar(select(Procedure).where(Procedure.code == "test_rhinoplasty"))
    assert rhinoplasty.hospital_nights_max == 1


def test_load_catalogue_updates_a_row_in_place(run, session, tmp_path):
    path = tmp_path / "procedures.toml"
    path.write_text(_EXTRA_PROCEDURE)
    run("load-catalogue", "--file", str(path))
    path.write_text(_EXTRA_PROCEDURE.replace("hospital_nights_max = 1", "hospital_nights_max = 2"))
    run("load-catalogue", "--file", str(path))
    session.expire_all()
    rows = session.scalars(select(Procedure).where(Procedure.code == "test_rhinoplasty")).all()
    assert [row.hospital_nights_max for row in rows] == [2]


def test_load_catalogue_defaults_to_the_configured_file(run, session):
    before = session.scalar(select(func.count(Procedure.id)))
    output = run("load-catalogue").output
    assert "0 created" in output
    assert session.scalar(select(func.count(Procedure.id))) == before


def test_a_bad_catalogue_row_is_refused_naming_the_field(run, session, tmp_path):
    path = tmp_path / "procedures.toml"
    path.write_text(_EXTRA_PROCEDURE.replace('anaesthesia = "general"', 'anaesthesia = "hypnosis"'))
    result = run("load-catalogue", "--file", str(path), ok=False)
    assert result.exit_code != 0
    assert "anaesthesia" in result.output
    session.expire_all()
    assert session.scalar(select(Procedure).where(Procedure.code == "test_rhinoplasty")) is None


def _demo_secrets(output: str) -> dict[str, list[str]]:
    secrets: dict[str, list[str]] = {"agency": [], "staff": []}
    for line in output.splitlines():
        if line.startswith("agency key"):
            secrets["agency"].append(line.split()[-1])
        elif line.startswith("staff token"):
            secrets["staff"].append(line.split()[-1])
    return secrets


def _demo_referrals(session) -> list[Referral]:
    session.expire_all()
    return list(session.scalars(select(Referral).where(Referral.agency_reference.like("DEMO-%"))))


def test_load_demo_creates_two_agencies_four_staff_and_a_dozen_referrals(run, client, session):
    output = run("load-demo").output
    assert "12 referrals created" in output
    names = [row[0] for row in AGENCIES]
    assert session.scalar(select(func.count(Agency.id)).where(Agency.name.in_(names))) == 2
    emails = [row[0] for row in STAFF]
    roles = session.scalars(select(StaffUser.role).where(StaffUser.email.in_(emails))).all()
    assert sorted(roles) == ["admin", "coordinator", "manager", "specialist"]
    referrals = _demo_referrals(session)
    assert len(referrals) == len(PATIENTS) == 12
    stages = Counter(referral.stage for referral in referrals)
    assert set(stages) == {str(stage) for stage in ALL_STAGES}
    assert sum(1 for r in referrals if r.agency_id is None) == 3
    secrets = _demo_secrets(output)
    assert len(secrets["agency"]) == 2
    assert len(secrets["staff"]) == 4
    for secret in secrets["agency"] + secrets["staff"]:
        assert _works(client, secret)


def test_a_demo_agency_key_sees_only_its_own_demo_referrals(run, client, session):
    secrets = _demo_secrets(run("load-demo").output)
    seen = []
    for secret in secrets["agency"]:
        response = client.get(
            f"{API}/referrals",
            query_string={"limit": 100},
            headers={"Authorization": f"Bearer {secret}"},
        )
        seen.append({item["id"] for item in response.json["items"]})
    assert seen[0] and seen[1]
    assert not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == 9


def test_rerunning_load_demo_revokes_the_old_demo_keys_and_adds_no_referrals(run, client, session):
    first = _demo_secrets(run("load-demo").output)
    second_output = run("load-demo").output
    assert "0 referrals created" in second_output
    second = _demo_secrets(second_output)
    for secret in first["agency"] + first["staff"]:
        assert not _works(client, secret)
    for secret in second["agency"] + second["staff"]:
        assert _works(client, secret)
    assert len(_demo_referrals(session)) == 12


def test_load_demo_leaves_keys_that_are_not_demo_keys_alone(run, client, session):
    key = _last_line(run("create-agency", "Berlin MedTravel GmbH", "--country", "DE"))
    run("load-demo")
    run("load-demo")
    assert _works(client, key)
    session.expire_all()
    labels = session.scalars(
        select(AgencyApiKey.label).where(AgencyApiKey.revoked_at.is_(None))
    ).all()
    assert "first key" in labels


@pytest.mark.parametrize("country", ["Germany", "XX", "1"])
def test_create_agency_refuses_a_country_that_is_not_an_iso_code(run, session, country):
    result = run("create-agency", "Nowhere Travel", "--country", country, ok=False)
    assert result.exit_code == 2
    assert "--country" in result.output
    session.expire_all()
    assert session.scalar(select(Agency).where(Agency.name == "Nowhere Travel")) is None
