"""Admins edit message templates through the API; edits are checked like the files."""

from sqlalchemy import select

from crm.messaging.models import OutboxMessage
from tests.messaging.support import new_referral

API = "/api/v1/message-templates"


def _put(client, admin, path, source):
    return client.put(f"{API}/{path}", json={"source": source}, headers=admin.headers())


def test_managers_list_every_field_with_edits_marked(client, factory):
    manager = factory.staff("manager")
    rows = client.get(API, headers=manager.headers()).json
    keys = {(r["language"], r["kind"], r["field"]) for r in rows}
    assert ("tr", "enquiry_received_patient", "sms") in keys
    assert not any(r["overridden"] for r in rows)


def test_coordinators_cannot_edit_templates(client, factory):
    coordinator = factory.staff("coordinator")
    response = _put(client, coordinator, "ad_hoc/en/subject", "Hello")
    assert response.status_code == 403


def test_an_admin_edit_is_previewed_and_used_by_new_messages(client, factory, session):
    admin = factory.staff("admin")
    source = "{{ hospital_name }}: Merhaba {{ patient_first_name }}, yeni haber: {{ link }}"
    saved = _put(client, admin, "enquiry_received_patient/tr/sms", source)
    assert saved.status_code == 200, saved.json
    assert saved.json["sms"].startswith("Istanbul Spine Centre: Merhaba Alex, yeni haber:")
    referral = new_referral(factory, patient={"language": "tr"})
    sms = session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.referral_id == referral.id, OutboxMessage.channel == "sms"
        )
    )
    assert "yeni haber" in sms.body_text


def test_an_sms_edit_may_not_use_health_variables(client, factory):
    admin = factory.staff("admin")
    response = _put(
        client, admin, "enquiry_received_patient/en/sms", "About your {{ procedure_name }}"
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "source"


def test_an_sms_edit_may_not_spell_out_health_detail_or_prices(client, factory):
    admin = factory.staff("admin")
    for text in (
        "Your MRI was reviewed: {{ link }}",
        "Your plan costs €4,500: {{ link }}",
        "Microdiscectomy news: {{ link }}",
    ):
        response = _put(client, admin, "ad_hoc/en/sms", text)
        assert response.status_code == 422, text


def test_a_template_that_does_not_compile_is_refused(client, factory):
    admin = factory.staff("admin")
    response = _put(client, admin, "ad_hoc/en/subject", "{{ subject ")
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "source"


def test_reverting_goes_back_to_the_shipped_template(client, factory):
    admin = factory.staff("admin")
    _put(client, admin, "ad_hoc/en/subject", "Changed: {{ subject }}")
    reverted = client.delete(f"{API}/ad_hoc/en/subject", headers=admin.headers())
    assert reverted.status_code == 204
    preview = client.get(f"{API}/ad_hoc/en/preview", headers=admin.headers()).json
    assert preview["subject"] == "A sample subject"
    again = client.delete(f"{API}/ad_hoc/en/subject", headers=admin.headers())
    assert again.status_code == 404


def test_unknown_kinds_and_fields_are_404(client, factory):
    admin = factory.staff("admin")
    assert _put(client, admin, "no_such_kind/en/sms", "x").status_code == 404
    assert _put(client, admin, "ad_hoc/en/footer", "x").status_code == 404
