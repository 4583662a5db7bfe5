"""A referral submitted as a FHIR Bundle, mapped onto the JSON submit's arguments.

`referral_args(bundle)` reads a Bundle (`transaction` or `collection`) with one Patient,
one ServiceRequest and optional Consents into the same dict a client would send to
`POST /referrals`, then loads it through the same marshmallow schema
(`ReferralCreateArgs`). Every error names the FHIR path it came from
(`Bundle.entry[1].resource.code`), whether the mapping found it or the schema did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import ValidationError

from crm.core.errors import DomainError, ValidationFailed, flatten_marshmallow
from crm.fhir import codes
from crm.referrals.schemas import ReferralCreateArgs

BUNDLE_TYPES = ("transaction", "collection")
GENDERS = ("female", "male", "other", "unknown")
PHONE_SYSTEMS = ("phone", "sms")
CONSENT_CHANNELS = ("sms", "email", "whatsapp")


class MappingFailed(ValidationFailed):
    """422: the Bundle cannot be read as a referral; each error names a FHIR path."""

    title = "The FHIR Bundle cannot be mapped to a referral"


class _Reader:
    """Collects the arguments and, for each, the FHIR path it was read from."""

    def __init__(self) -> None:
        self.args: dict[str, Any] = {"patient": {}, "intake": {}}
        self.origins: dict[str, str] = {}
        self.errors: list[dict[str, str]] = []

    def set(self, field: str, value: Any, path: str) -> None:
        target = self.args
        *parents, name = field.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[name] = value
        self.origins[field] = path

    def fail(self, path: str, reason: str) -> None:
        self.errors.append({"field": path, "reason": reason})

    def origin_of(self, field: str) -> str:
        """The FHIR path of an argument, or of its nearest mapped parent."""
        candidate = field.split("[")[0]
        while candidate:
            if candidate in self.origins:
                return self.origins[candidate]
            candidate = candidate.rpartition(".")[0]
        return self.origins.get("patient", "Bundle")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _codes(concept: Any, system: str) -> list[str]:
    if not isinstance(concept, Mapping):
        return []
    return [
        c["code"]
        for c in _list(concept.get("coding"))
        if isinstance(c, Mapping) and c.get("system") == system and _text(c.get("code"))
    ]


def _entries(bundle: Any, reader: _Reader) -> dict[str, list[Any]] | None:
    """The entries by resource type; None when there is no Bundle to read at all."""
    found: dict[str, list[Any]] = {}
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        reader.fail("Bundle.resourceType", "send a Bundle")
        return None
    if bundle.get("type") not in BUNDLE_TYPES:
        reader.fail("Bundle.type", "a transaction or collection Bundle")
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        reader.fail("Bundle.entry", "the Bundle has no entries")
        return None
    for n, entry in enumerate(entries):
        path = f"Bundle.entry[{n}].resource"
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping) or not _text(resource.get("resourceType")):
            reader.fail(path, "each entry carries a resource with a resourceType")
            continue
        found.setdefault(resource["resourceType"], []).append((path, dict(resource), entry))
    return found


def _the_one(found, kind: str, reader: _Reader):
    items = found.get(kind, [])
    if len(items) != 1:
        reader.fail("Bundle.entry", f"exactly one {kind} (found {len(items)})")
        return None
    return items[0]


def _patient(path: str, patient: dict[str, Any], reader: _Reader) -> None:
    reader.origins["patient"] = path
    names = _list(patient.get("name"))
    name = names[0] if names and isinstance(names[0], Mapping) else {}
    given = " ".join(g for g in _list(name.get("given")) if isinstance(g, str)).strip()
    if not given:
        reader.fail(f"{path}.name[0].given", "the patient's given name is required")
    else:
        reader.set("patient.given_name", given, f"{path}.name[0].given")
    if not _text(name.get("family")):
        reader.fail(f"{path}.name[0].family", "the patient's family name is required")
    else:
        reader.set("patient.family_name", name["family"], f"{path}.name[0].family")
    if "birthDate" in patient:
        reader.set("patient.date_of_birth", patient["birthDate"], f"{path}.birthDate")
    if "gender" in patient:
        if patient["gender"] not in GENDERS:
            reader.fail(f"{path}.gender", f"one of {', '.join(GENDERS)}")
        else:
            reader.set("patient.sex", patient["gender"], f"{path}.gender")
    _telecom(path, patient, reader)
    _country(path, patient, reader)
    _language_and_zone(path, patient, reader)
    for n, identifier in enumerate(_list(patient.get("identifier"))):
        if isinstance(identifier, Mapping) and identifier.get("system") == codes.AGENCY_REFERENCE:
            reader.set("agency_reference", identifier.get("value"), f"{path}.identifier[{n}].value")


def _telecom(path: str, patient: dict[str, Any], reader: _Reader) -> None:
    for n, point in enumerate(_list(patient.get("telecom"))):
        if not isinstance(point, Mapping):
            continue
        system, where = point.get("system"), f"{path}.telecom[{n}].value"
        if system in PHONE_SYSTEMS and "patient.phone" not in reader.origins:
            reader.set("patient.phone", point.get("value"), where)
        elif system == "email" and "patient.email" not in reader.origins:
            reader.set("patient.email", point.get("value"), where)


def _country(path: str, patient: dict[str, Any], reader: _Reader) -> None:
    addresses = _list(patient.get("address"))
    for n, address in enumerate(addresses):
        if isinstance(address, Mapping) and _text(address.get("country")):
            reader.set("patient.country", address["country"], f"{path}.address[{n}].country")
            return
    reader.fail(f"{path}.address[0].country", "the patient's country (ISO 3166 alpha-2)")


def _language_and_zone(path: str, patient: dict[str, Any], reader: _Reader) -> None:
    communication = _list(patient.get("communication"))
    preferred = sorted(
        (n for n, c in enumerate(communication) if isinstance(c, Mapping)),
        key=lambda n: not communication[n].get("preferred"),
    )
    for n in preferred:
        found = _codes(communication[n].get("language"), codes.LANGUAGE)
        if found:
            where = f"{path}.communication[{n}].language"
            reader.set("patient.language", found[0], where)
            break
    for n, extension in enumerate(_list(patient.get("extension"))):
        if isinstance(extension, Mapping) and extension.get("url") == codes.TIME_ZONE:
            where = f"{path}.extension[{n}].valueCode"
            reader.set("patient.time_zone", extension.get("valueCode"), where)
            return
    reader.fail(
        f"{path}.extension",
        f"the patient's IANA time zone, as an extension {codes.TIME_ZONE} with valueCode",
    )


def _service_request(path: str, request: dict[str, Any], patient_urls: set[str], reader):
    procedures = _codes(request.get("code"), codes.PROCEDURE)
    if not procedures:
        reader.fail(f"{path}.code", f"a coding with system {codes.PROCEDURE}")
    else:
        reader.set("procedure", procedures[0], f"{path}.code")
    subject = request.get("subject")
    target = subject.get("reference") if isinstance(subject, Mapping) else None
    if target not in patient_urls:
        reader.fail(f"{path}.subject", "must reference the Bundle's Patient")
    complaints = []
    for n, reason in enumerate(_list(request.get("reasonCode"))):
        if isinstance(reason, Mapping):
            text = _text(reason.get("text")) or next(
                (c.get("code") for c in _list(reason.get("coding")) if isinstance(c, Mapping)),
                None,
            )
            if text:
                complaints.append(text)
                reader.origins.setdefault("intake.complaints", f"{path}.reasonCode[{n}]")
    if complaints:
        reader.args["intake"]["complaints"] = complaints
    notes = [n.get("text") for n in _list(request.get("note")) if isinstance(n, Mapping)]
    if any(isinstance(text, str) for text in notes):
        text = "\n".join(t for t in notes if isinstance(t, str))
        reader.set("intake.notes", text, f"{path}.note")


def _consents(found, patient_urls: set[str], reader: _Reader) -> None:
    for path, consent, _ in found.get("Consent", []):
        channels = []
        for n, category in enumerate(_list(consent.get("category"))):
            channels.extend((n, code) for code in _codes(category, codes.CHANNEL))
        if not channels:
            reader.fail(f"{path}.category", f"a coding with system {codes.CHANNEL}")
            continue
        provision = consent.get("provision")
        kind = provision.get("type") if isinstance(provision, Mapping) else None
        if kind not in ("permit", "deny"):
            reader.fail(f"{path}.provision.type", "permit or deny")
            continue
        for n, channel in channels:
            if channel not in CONSENT_CHANNELS:
                reader.fail(f"{path}.category[{n}]", f"one of {', '.join(CONSENT_CHANNELS)}")
                continue
            granted = kind == "permit" and consent.get("status", "active") == "active"
            reader.set(f"patient.consents.{channel}", granted, f"{path}.provision.type")
        rule = consent.get("policyRule")
        source = _text(rule.get("text")) if isinstance(rule, Mapping) else None
        reader.set("patient.consents.source", source or "FHIR Consent", f"{path}.policyRule")


def _urls_of(path_resource_entry) -> set[str]:
    _, resource, entry = path_resource_entry
    urls = {f"Patient/{resource.get('id')}"} if resource.get("id") else set()
    if isinstance(entry, Mapping) and _text(entry.get("fullUrl")):
        urls.add(entry["fullUrl"])
    return urls


def referral_args(bundle: Any) -> tuple[dict[str, Any], Callable[[str], str]]:
    """The loaded `ReferralCreateArgs` and how to name a submit's field as a FHIR path."""
    reader = _Reader()
    found = _entries(bundle, reader)
    if found is None:
        raise MappingFailed(reader.errors)
    patient = _the_one(found, "Patient", reader)
    request = _the_one(found, "ServiceRequest", reader)
    urls: set[str] = set()
    if patient:
        urls = _urls_of(patient)
        _patient(patient[0], patient[1], reader)
    if request:
        _service_request(request[0], request[1], urls, reader)
    _consents(found, urls, reader)
    if reader.errors:
        raise MappingFailed(reader.errors)
    try:
        loaded = ReferralCreateArgs().load(reader.args)
    except ValidationError as exc:
        raise MappingFailed(_renamed(flatten_marshmallow(exc.messages), reader)) from exc
    return loaded, reader.origin_of


def _renamed(errors: list[dict[str, str]], reader: _Reader) -> list[dict[str, str]]:
    return [{"field": reader.origin_of(e["field"]), "reason": e["reason"]} for e in errors]


def renamed(exc: DomainError, origin_of: Callable[[str], str]) -> DomainError:
    """An error of the submit operation, its fields named as FHIR paths."""
    errors = exc.extensions.get("errors")
    if isinstance(errors, list):
        exc.extensions["errors"] = [{**e, "field": origin_of(e["field"])} for e in errors]
        exc.detail = "; ".join(f"{e['field']}: {e['reason']}" for e in exc.extensions["errors"])
    if isinstance(exc.extensions.get("field"), str):
        exc.extensions["field"] = origin_of(exc.extensions["field"])
    return exc
