"""A JSON submit's payload written as the FHIR Bundle an integrator would send."""

from __future__ import annotations

from typing import Any

from crm.fhir import codes


def fhir_bundle(payload: dict[str, Any], bundle_type: str = "transaction") -> dict[str, Any]:
    person = payload["patient"]
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": person["family_name"], "given": [person["given_name"]]}],
        "birthDate": person["date_of_birth"],
        "gender": person["sex"],
        "telecom": [
            {"system": "phone", "value": person["phone"]},
            {"system": "email", "value": person["email"]},
        ],
        "address": [{"country": person["country"]}],
        "communication": [
            {"language": {"coding": [{"system": codes.LANGUAGE, "code": person["language"]}]}}
        ],
        "extension": [{"url": codes.TIME_ZONE, "valueCode": person["time_zone"]}],
    }
    if payload.get("agency_reference"):
        patient["identifier"] = [
            {"system": codes.AGENCY_REFERENCE, "value": payload["agency_reference"]}
        ]
    intake = payload.get("intake", {})
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "proposal",
        "code": {"coding": [{"system": codes.PROCEDURE, "code": payload["procedure"]}]},
        "subject": {"reference": "urn:uuid:patient-1"},
        "reasonCode": [{"text": complaint} for complaint in intake.get("complaints", [])],
        "note": [{"text": intake["notes"]}] if intake.get("notes") else [],
    }
    entries = [
        {"fullUrl": "urn:uuid:patient-1", "resource": patient},
        {"fullUrl": "urn:uuid:request-1", "resource": request},
    ]
    consents = person.get("consents", {})
    for channel in ("sms", "email", "whatsapp"):
        if channel in consents:
            entries.append({"resource": consent(channel, consents[channel], consents["source"])})
    if bundle_type == "transaction":
        for entry in entries:
            entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
    return {"resourceType": "Bundle", "type": bundle_type, "entry": entries}


def consent(channel: str, granted: bool, source: str) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": codes.CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": codes.CHANNEL, "code": channel}]}],
        "patient": {"reference": "urn:uuid:patient-1"},
        "policyRule": {"text": source},
        "provision": {"type": "permit" if granted else "deny"},
    }
