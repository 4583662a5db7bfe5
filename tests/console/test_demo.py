"""`make run`'s demo data prints a console sign-in for each role, reset on every run."""

from __future__ import annotations

from crm.demo import STAFF
from tests.console.support import sign_in


def _sign_ins(output: str) -> dict[str, tuple[str, str]]:
    found = {}
    for line in output.splitlines():
        if line.startswith("sign-in "):
            _, role, email, password = line.split()
            found[role] = (email, password)
    return found


def _load_demo(app) -> str:
    result = app.test_cli_runner().invoke(args=["crm", "load-demo"])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_the_demo_prints_a_sign_in_for_every_role_and_the_console_address(app, session):
    output = _load_demo(app)
    assert set(_sign_ins(output)) == {"coordinator", "specialist", "manager", "admin"}
    assert {row[0] for row in STAFF} == {email for email, _ in _sign_ins(output).values()}
    assert "console     http://127.0.0.1:5000/console/" in output


def test_a_printed_demo_sign_in_works(app, client, session):
    email, password = _sign_ins(_load_demo(app))["coordinator"]
    assert sign_in(client, email, password).headers["Location"].endswith("/console/")


def test_the_demo_admin_enrols_a_second_factor_at_first_sign_in(app, client, session):
    email, password = _sign_ins(_load_demo(app))["admin"]
    assert sign_in(client, email, password).headers["Location"].endswith("/console/enrol")


def test_running_the_demo_again_resets_the_printed_passwords(app, client, session):
    first = _sign_ins(_load_demo(app))["coordinator"]
    second = _sign_ins(_load_demo(app))["coordinator"]
    assert first[1] != second[1]
    assert sign_in(client, *first).status_code == 401
    assert sign_in(client, *second).status_code == 303


def test_the_demo_prints_every_patients_short_link_on_the_configured_address(
    app, client, session, monkeypatch
):
    monkeypatch.setitem(app.config["CRM"], "PUBLIC_BASE_URL", "http://127.0.0.1:5101")
    output = _load_demo(app)
    assert "console     http://127.0.0.1:5101/console/" in output
    patients = [line.split()[-1] for line in output.splitlines() if line.startswith("patient ")]
    assert len(patients) == 12
    assert all(url.startswith("http://127.0.0.1:5101/s/") for url in patients)
    opened = client.get(patients[0].removeprefix("http://127.0.0.1:5101"))
    assert opened.status_code == 303 and "/p/" in opened.headers["Location"]


def _panel_sign_in(output: str) -> tuple[str, str]:
    [line] = [line for line in output.splitlines() if line.startswith("panel       agency ")]
    _, _, email, password = line.split()
    return email, password


def test_the_demo_prints_an_agency_panel_sign_in_that_lands_in_the_panel(app, client, session):
    output = _load_demo(app)
    assert "panel       http://127.0.0.1:5000/agency/" in output
    email, password = _panel_sign_in(output)
    assert email == "agency@demo.example"
    assert sign_in(client, email, password).headers["Location"].endswith("/console/")
    assert client.get("/console/").headers["Location"].endswith("/agency/")
    listed = client.get("/agency/referrals").get_data(as_text=True)
    assert "Jonas Weber" in listed and "Omar Haddad" not in listed  # its agency's only
