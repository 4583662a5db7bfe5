"""The referral's records as FHIR resources, each shown as the API shows it to this caller:

- DocumentReference: every document (`GET /referrals/<id>/documents` is any caller's);
  metadata and the download URL only, never the bytes.
- Communication: staff see the patient thread (bodies included, as the console shows it)
  and every outbound message with its text (as `GET /referrals/<id>/messages`); an agency
  sees only outbound messages to the patient or to itself, kind, channel and status and no
  body (as `GET /referrals/<id>/deliveries`), and no thread.
- QuestionnaireResponse: answered check-ins, for the roles `GET /referrals/<id>/check-ins`
  allows (coordinator, specialist, manager, admin).
- Consent: the patient's consent per channel, and the informed consent of an accepted plan.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context, url_for

from crm.auth.guards import role_allows
from crm.conversation.queries import thread
from crm.core.actors import Actor
from crm.documents.queries import documents_of
from crm.fhir import codes
from crm.fhir.codes import instant, reference
from crm.followup.queries import check_ins_of
from crm.messaging.queries import messages_of
from crm.plans.queries import plans_of
from crm.referrals.models import Referral

CHECK_IN_ROLES = ("coordinator", "specialist", "manager")
AGENCY_AUDIENCES = frozenset({"patient", "agency"})


def _download_url(document_id: int) -> str:
    if has_request_context():
        return url_for("documents.download_document", document_id=document_id, _external=True)
    return f"/api/v1/documents/{document_id}/content"


def document_references(
    referral: Referral, patient: dict[str, Any], request: dict[str, Any]
) -> list[dict[str, Any]]:
    """`attachment.hash` is FHIR's base64 SHA-1, which would mean reading every file back:
    it is left out, and the SHA-256 we store (hex) is the identifier instead."""
    return [
        {
            "resourceType": "DocumentReference",
            "id": f"document-{document.id}",
            "identifier": [{"system": codes.DOCUMENT_SHA256, "value": document.sha256}],
            "status": "current",
            "type": codes.concept(codes.DOCUMENT_KIND, document.kind),
            "subject": reference(patient),
            "date": instant(document.created_at),
            "author": [{"display": document.uploaded_by_label}],
            "content": [
                {
                    "attachment": {
                        "contentType": codes.MIME_TYPES[document.content_type],
                        "url": _download_url(document.id),
                        "size": document.size_bytes,
                        "title": document.filename,
                        "creation": instant(document.created_at),
                    }
                }
            ],
            "context": {"related": [reference(request)]},
        }
        for document in documents_of(referral.id)
    ]


def communications(
    referral: Referral, actor: Actor, patient: dict[str, Any]
) -> list[dict[str, Any]]:
    resources = []
    if actor.is_staff:
        resources.extend(_thread(referral, patient))
    for message in messages_of(referral.id)["outbound"]:
        if actor.is_agency and message.audience not in AGENCY_AUDIENCES:
            continue
        resources.append(_outbound(message, patient, with_body=actor.is_staff))
    return resources


def _thread(referral: Referral, patient: dict[str, Any]) -> list[dict[str, Any]]:
    resources = []
    for n, entry in enumerate(thread(referral.id), start=1):
        resource: dict[str, Any] = {
            "resourceType": "Communication",
            "id": f"referral-{referral.id}-thread-{n}",
            "status": "completed",
            "category": [{"text": "conversation"}],
            "medium": [codes.concept(codes.CHANNEL, entry.channel)],
            "subject": reference(patient),
            "sent": instant(entry.at),
            "payload": [{"contentString": entry.body}],
        }
        if entry.from_patient:
            resource["sender"] = reference(patient)
        else:
            resource["recipient"] = [reference(patient)]
            if entry.author:
                resource["sender"] = {"display": entry.author}
        resources.append(resource)
    return resources


def _outbound(message: Any, patient: dict[str, Any], *, with_body: bool) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "id": f"message-{message.id}",
        "status": codes.COMMUNICATION_STATUS.get(message.status, "unknown"),
        "category": [
            codes.concept(codes.MESSAGE_KIND, message.kind),
            codes.concept(codes.MESSAGE_AUDIENCE, message.audience),
        ],
        "medium": [codes.concept(codes.CHANNEL, message.channel)],
        "subject": reference(patient),
    }
    if message.audience == "patient":
        resource["recipient"] = [reference(patient)]
    if message.sent_at:
        resource["sent"] = instant(message.sent_at)
    if message.delivered_at:
        resource["received"] = instant(message.delivered_at)
    if message.suppressed_reason:
        resource["statusReason"] = {"text": message.suppressed_reason}
    if with_body and message.body_text:
        resource["payload"] = [{"contentString": message.body_text}]
    return resource


def _answer(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueDecimal": value}
    return {"valueString": str(value)}


def questionnaire_responses(
    referral: Referral, actor: Actor, patient: dict[str, Any], request: dict[str, Any]
) -> list[dict[str, Any]]:
    """One per answered check-in; `item.linkId` is the catalogue's question code."""
    if not role_allows(actor, CHECK_IN_ROLES):
        return []
    resources = []
    for check_in in check_ins_of(referral.id):
        if check_in.answered_at is None:
            continue
        items = [
            {"linkId": code, "answer": [_answer(value)]}
            for code, value in sorted((check_in.answers or {}).items())
            if value is not None and value != ""
        ]
        if check_in.free_text:
            items.append({"linkId": "free_text", "answer": [{"valueString": check_in.free_text}]})
        resource: dict[str, Any] = {
            "resourceType": "QuestionnaireResponse",
            "id": f"check-in-{check_in.id}",
            "identifier": {"system": codes.CHECK_IN, "value": check_in.label},
            "questionnaire": f"{codes.CHECK_IN}:{referral.procedure.code}",
            "basedOn": [reference(request)],
            "status": "completed",
            "subject": reference(patient),
            "authored": instant(check_in.answered_at),
            "source": reference(patient),
        }
        if items:
            resource["item"] = items
        resources.append(resource)
    return resources


def consents(referral: Referral, patient: dict[str, Any]) -> list[dict[str, Any]]:
    resources = [_channel_consent(consent, patient) for consent in referral.patient.consents]
    resources.extend(
        _plan_consent(plan, patient)
        for plan in plans_of(referral.id)
        if plan.consent_information_sha256 and plan.accepted_at
    )
    return resources


def _channel_consent(consent: Any, patient: dict[str, Any]) -> dict[str, Any]:
    """Contact by one channel: permitted or refused, when and how it was recorded."""
    return {
        "resourceType": "Consent",
        "id": f"consent-{consent.id}",
        "status": "active",
        "scope": codes.concept(codes.CONSENT_SCOPE, "patient-privacy", "Privacy Consent"),
        "category": [codes.concept(codes.CHANNEL, consent.channel)],
        "patient": reference(patient),
        "dateTime": instant(consent.recorded_at),
        "policyRule": {
            "coding": [codes.coding(codes.ACT_CODE, "OPTIN" if consent.granted else "OPTOUT")],
            "text": consent.source,
        },
        "provision": {"type": "permit" if consent.granted else "deny"},
    }


def _plan_consent(plan: Any, patient: dict[str, Any]) -> dict[str, Any]:
    """The informed consent to a plan: the information text the patient was shown is
    named by its plan version, language and SHA-256 in `policy.uri`."""
    policy = (
        f"{codes.CONSENT_INFORMATION}:plan-{plan.id}:v{plan.consent_plan_version}"
        f":{plan.consent_language}:sha256:{plan.consent_information_sha256}"
    )
    return {
        "resourceType": "Consent",
        "id": f"plan-consent-{plan.id}",
        "status": "active" if plan.status == "accepted" else "inactive",
        "scope": codes.concept(codes.CONSENT_SCOPE, "treatment", "Treatment"),
        "category": [codes.concept(codes.LOINC, "59284-0", "Patient Consent")],
        "patient": reference(patient),
        "dateTime": instant(plan.accepted_at),
        "policy": [{"uri": policy}],
        "provision": {"type": "permit"},
    }
