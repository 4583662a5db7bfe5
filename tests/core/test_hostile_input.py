"""No input reaches a 500, and none is silently changed: each class of hostile input,
tested across every route of the OpenAPI document where the class allows it."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from flask import Flask

from crm.core.edge import MAX_ID, MAX_JSON_DEPTH, IdConverter
from crm.core.schemas import Args, QueryArgs
from tests.factories import referral_payload
from tests.helpers import API, assert_problem, field_errors

TOO_BIG = MAX_ID + 1  # 2147483648: no integer column holds it
_METHODS = ("get", "post", "put", "patch", "delete")
_DOC_PATHS = {f"{API}/openapi.json", f"{API}/docs"}


@pytest.fixture(scope="module")
def spec(app: Flask) -> dict[str, Any]:
    return app.test_client().get(f"{API}/openapi.json").json


@pytest.fixture
def admin(factory):
    return factory.staff("admin")


@pytest.fixture
def referral(factory):
    return factory.referral(factory.agency())


def _operations(spec: dict[str, Any]):
    """(path, method, operation) with the path item's parameters merged into each."""
    for path, item in spec["paths"].items():
        for method in _METHODS:
            if method in item:
                operation = dict(item[method])
                operation["parameters"] = item.get("parameters", []) + operation.get(
                    "parameters", []
                )
                yield path, method, operation


def _path_parameters(operation: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["schema"]["type"] for p in operation["parameters"] if p["in"] == "path"}


def _fill(path: str, values: dict[str, Any]) -> str:
    return re.sub(r"{(\w+)}", lambda m: str(values.get(m.group(1), _any(m.group(1)))), path)


def _any(name: str) -> str:
    """A value for a parameter the caller did not name: a row id, or a word."""
    return "1" if name.endswith("_id") else "x"


def _real(path: str, referral) -> str:
    """The path with its parameters filled: the referral's id, something for the rest."""
    values = {"referral_id": referral.id, "code": "mri_reminder", "label": "day_1"}
    values |= {"kind": "mri_reminder", "language": "en", "field": "sms"}
    values |= {"agency_id": referral.agency_id, "month": "2026-01", "public_id": "msg_1"}
    return _fill(path, values | {"task_id": 1, "document_id": 1, "plan_id": 1, "match_id": 1})


def _send(client, method: str, url: str, headers: dict[str, str], **kwargs: Any):
    return getattr(client, method)(url, headers=headers, **kwargs)


# --- integers beyond the columns ---------------------------------------------------------


def test_every_route_answers_404_for_an_id_beyond_the_integer_column(client, spec, admin):
    tried = 0
    for path, method, operation in _operations(spec):
        types = _path_parameters(operation)
        if "integer" not in types.values():
            continue
        for bad in (TOO_BIG, 0, 10**30):
            values = {name: bad if kind == "integer" else "x" for name, kind in types.items()}
            response = _send(client, method, _fill(path, values), admin.headers(), json={})
            assert_problem(response, 404, "not-found")
            tried += 1
    assert tried >= 3 * 25


def test_no_route_answers_5xx_to_junk_path_values(client, spec, admin):
    for path, method, _operation in _operations(spec):
        for junk in ("2147483648", "%00", "%ED%A0%80", "-1", "x" * 300):
            url = re.sub(r"{\w+}", junk, path)
            response = _send(client, method, url, admin.headers(), json={})
            assert response.status_code < 500, (method, url, response.get_data(as_text=True))


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        *[("1", True), ("2147483647", True), ("999999999", True), ("0", False), ("01", False)],
        *[("2147483648", False), ("9999999999", False), ("21474836470", False), ("-1", False)],
    ],
)
def test_the_id_pattern_matches_exactly_1_to_2_31_minus_1(text, matches):
    assert bool(re.fullmatch(IdConverter.regex, text)) is matches


def test_the_id_parameters_are_documented_with_their_range(spec):
    [document_id] = spec["paths"][f"{API}/documents/{{document_id}}/content"]["parameters"]
    assert document_id["schema"] == {
        "type": "integer",
        "format": "int32",
        "minimum": 1,
        "maximum": MAX_ID,
    }


def _integer_query_parameters(spec: dict[str, Any]):
    for path, method, operation in _operations(spec):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query" and parameter["schema"].get("type") == "integer":
                yield path, method, parameter["name"]


@pytest.mark.parametrize("value", [str(TOO_BIG), str(-(2**31) - 1), "7.5", "1e3"])
def test_every_integer_query_parameter_refuses_what_it_cannot_hold(
    client, spec, admin, referral, value
):
    tried = 0
    for path, method, name in _integer_query_parameters(spec):
        url = _real(path, referral)
        response = _send(client, method, url, admin.headers(), query_string={name: value})
        body = assert_problem(response, 422, "validation-failed")
        assert f"query.{name}" in field_errors(body), (url, name)
        tried += 1
    assert tried >= 4


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _integer_body_fields(spec, schema, prefix="", depth=0):
    """(field path, body setting only that field) for every integer a JSON body takes."""
    schema = _resolve(spec, schema)
    for name, prop in schema.get("properties", {}).items():
        prop = _resolve(spec, prop.get("allOf", [prop])[0]) if "allOf" in prop else prop
        path = f"{prefix}.{name}" if prefix else name
        if prop.get("type") == "integer":
            yield path, [name], prop
        elif depth < 4 and (prop.get("type") == "object" or "$ref" in prop):
            for inner, keys, leaf in _integer_body_fields(spec, prop, path, depth + 1):
                yield inner, [name, *keys], leaf
        elif depth < 4 and prop.get("type") == "array":
            items = _resolve(spec, prop.get("items", {}))
            if items.get("type") == "integer":
                yield f"{path}[0]", [name, 0], items
            for inner, keys, leaf in _integer_body_fields(spec, items, f"{path}[0]", depth + 1):
                yield inner, [name, 0, *keys], leaf


def _body(keys: list[Any], value: Any) -> Any:
    for key in reversed(keys):
        value = [value] if key == 0 else {key: value}
    return value


def _json_bodies(spec: dict[str, Any]):
    for path, method, operation in _operations(spec):
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            yield path, method, content["application/json"]["schema"]


_PAST_THE_MAXIMUM, _BELOW_THE_MINIMUM = "past the maximum", "below the minimum"


def _bad_value(kind: Any, prop: dict[str, Any]) -> Any:
    if kind == _PAST_THE_MAXIMUM:
        return prop["maximum"] + 1
    if kind == _BELOW_THE_MINIMUM:
        return prop["minimum"] - 1
    return kind


def test_every_integer_in_a_json_body_documents_a_range_a_column_holds(spec):
    found = [
        (field, prop)
        for _path, _method, schema in _json_bodies(spec)
        for field, _keys, prop in _integer_body_fields(spec, schema)
    ]
    assert len(found) >= 15
    for field, prop in found:
        assert -(2**63) <= prop["minimum"] <= prop["maximum"] < 2**63, field


@pytest.mark.parametrize("kind", [_PAST_THE_MAXIMUM, _BELOW_THE_MINIMUM, 7.5, True, "7"])
def test_every_integer_in_a_json_body_refuses_what_it_cannot_hold(
    client, spec, admin, referral, kind
):
    tried = 0
    for path, method, schema in _json_bodies(spec):
        url = _real(path, referral)
        for field, keys, prop in _integer_body_fields(spec, schema):
            value = _bad_value(kind, prop)
            response = _send(client, method, url, admin.headers(), json=_body(keys, value))
            body = assert_problem(response, 422, "validation-failed")
            assert field in field_errors(body), (method, url, field, body)
            tried += 1
    assert tried >= 15


def test_a_nudge_rule_update_refuses_a_repeat_interval_beyond_the_column(client, admin):
    response = client.patch(
        f"{API}/nudge-rules/mri_reminder",
        json={"repeat_every_minutes": TOO_BIG},
        headers=admin.headers(),
    )
    body = assert_problem(response, 422, "validation-failed")
    assert "repeat_every_minutes" in field_errors(body)


def test_a_document_id_beyond_the_column_is_404(client, admin):
    response = client.get(f"{API}/documents/{TOO_BIG}/content", headers=admin.headers())
    assert_problem(response, 404, "not-found")


def _argument_schemas(app: Flask):
    for endpoint, view in app.view_functions.items():
        for parameter in getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", []):
            yield endpoint, parameter["in"], parameter["schema"]


def test_every_input_schema_derives_from_the_shared_base(app):
    schemas = list(_argument_schemas(app))
    assert len(schemas) >= 20
    for endpoint, location, schema in schemas:
        base = QueryArgs if location in {"query", "form"} else Args
        assert isinstance(schema, base) or issubclass(schema, base), (endpoint, schema)


def test_a_text_field_that_declares_no_length_takes_at_most_200_characters(client, factory):
    agency = factory.agency()
    payload = referral_payload(procedure="m" * 201)
    response = client.post(f"{API}/referrals", json=payload, headers=agency.headers())
    body = assert_problem(response, 422, "validation-failed")
    assert "200" in field_errors(body)["procedure"]


# --- text the database cannot store ------------------------------------------------------


def test_a_lone_surrogate_in_a_json_string_is_422_naming_the_field(client, factory):
    agency = factory.agency()
    raw = json.dumps(referral_payload(patient={"given_name": "Jo\ud800nas"}))
    response = client.post(
        f"{API}/referrals", data=raw, content_type="application/json", headers=agency.headers()
    )
    body = assert_problem(response, 422, "validation-failed")
    assert "lone surrogate" in field_errors(body)["patient.given_name"]


def test_a_lone_surrogate_in_a_json_key_is_422(client, admin, referral):
    raw = '{"body": "fine", "\\udfff": 1}'
    response = client.post(
        f"{API}/referrals/{referral.id}/notes",
        data=raw,
        content_type="application/json",
        headers=admin.headers(),
    )
    body = assert_problem(response, 422, "validation-failed")
    assert "lone surrogate" in body["errors"][0]["reason"]


def test_a_nul_in_a_query_parameter_is_422_naming_it(client, admin):
    response = client.get(f"{API}/referrals?q=we%00ber", headers=admin.headers())
    body = assert_problem(response, 422, "validation-failed")
    assert "NUL" in field_errors(body)["query.q"]


def test_a_nul_in_a_path_segment_is_422_naming_it(client, admin):
    response = client.get(f"{API}/procedures/micro%00discectomy", headers=admin.headers())
    body = assert_problem(response, 422, "validation-failed")
    assert "path.code" in field_errors(body)


def test_a_nul_in_the_portal_check_in_form_is_422(client, referral):
    from crm.patients import links

    token = links.token_for(links.link_for(referral.id))
    response = client.post(f"/p/{token}/check-in", data={"free_text": "it\x00hurts"})
    body = assert_problem(response, 422, "validation-failed")
    assert "free_text" in field_errors(body)


def test_a_portal_score_in_other_digits_is_no_answer_rather_than_a_crash(session):
    from werkzeug.datastructures import MultiDict

    from crm.catalogue.queries import procedure_by_code
    from crm.portal.check_in import answers_from_form

    spine = procedure_by_code("microdiscectomy").check_in_form
    answers = answers_from_form(MultiDict({"back_pain": "²", "leg_pain": "٣" * 40}), spine)
    assert answers["back_pain"] is None
    assert answers["leg_pain"] is None


def test_a_nul_in_a_multipart_field_is_422_naming_it(client, admin, referral):
    response = client.post(
        f"{API}/referrals/{referral.id}/documents",
        data={"kind": "other\x00", "file": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "a.pdf")},
        content_type="multipart/form-data",
        headers=admin.headers(),
    )
    body = assert_problem(response, 422, "validation-failed")
    assert "kind" in field_errors(body)


def test_a_nul_in_an_uploaded_file_name_is_422_naming_the_file(client, admin, referral):
    response = client.post(
        f"{API}/referrals/{referral.id}/documents",
        data={"kind": "other", "file": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "a\x00.pdf")},
        content_type="multipart/form-data",
        headers=admin.headers(),
    )
    body = assert_problem(response, 422, "validation-failed")
    assert "file" in field_errors(body)


def test_a_nul_in_a_signed_twilio_inbound_body_is_not_a_500(app, client, monkeypatch):
    from twilio.request_validator import RequestValidator

    monkeypatch.setitem(app.config["CRM"], "TWILIO_AUTH_TOKEN", "edge-token")
    url = app.config["CRM"]["PUBLIC_BASE_URL"] + "/webhooks/twilio/inbound"
    form = {"From": "+4915112345678", "Body": "sto\x00p", "MessageSid": "SMedge1"}
    signature = RequestValidator("edge-token").compute_signature(url, form)
    response = client.post(
        "/webhooks/twilio/inbound", data=form, headers={"X-Twilio-Signature": signature}
    )
    body = assert_problem(response, 422, "validation-failed")
    assert "Body" in field_errors(body)


# --- nesting and size --------------------------------------------------------------------


def test_json_nested_50000_deep_is_a_400_before_authentication(client):
    response = client.post(
        f"{API}/referrals", data="[" * 50_000 + "]" * 50_000, content_type="application/json"
    )
    body = assert_problem(response, 400, "bad-request")
    assert str(MAX_JSON_DEPTH) in body["detail"]


def test_json_at_the_depth_limit_is_parsed(client, factory):
    agency = factory.agency()
    deep = "[" * (MAX_JSON_DEPTH - 2) + "]" * (MAX_JSON_DEPTH - 2)  # inside body and intake
    raw = json.dumps(referral_payload(intake={"notes": "x"})).replace('"x"', f'"x", "z": {deep}')
    response = client.post(
        f"{API}/referrals", data=raw, content_type="application/json", headers=agency.headers()
    )
    body = assert_problem(response, 422, "validation-failed")
    assert "intake.z" in field_errors(body)


def test_brackets_inside_strings_do_not_count_as_nesting(client, factory):
    agency = factory.agency()
    payload = referral_payload(intake={"notes": "[" * 1000})
    response = client.post(f"{API}/referrals", json=payload, headers=agency.headers())
    assert response.status_code == 201, response.get_data(as_text=True)


# --- constraint violations ---------------------------------------------------------------


@pytest.mark.parametrize("phone", ["", " ", "\t"])
def test_an_empty_phone_in_a_contact_update_is_422(client, factory, phone):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = client.patch(
        f"{API}/referrals/{referral.id}/patient", json={"phone": phone}, headers=agency.headers()
    )
    body = assert_problem(response, 422, "validation-failed")
    assert "empty" in field_errors(body)["phone"]


def test_an_empty_phone_in_a_new_referral_is_422_not_409(client, factory):
    agency = factory.agency()
    payload = referral_payload(patient={"phone": ""})
    response = client.post(f"{API}/referrals", json=payload, headers=agency.headers())
    body = assert_problem(response, 422, "validation-failed")
    assert "patient.phone" in field_errors(body)


def test_an_ad_hoc_message_naming_a_channel_twice_is_422(client, admin, referral):
    response = client.post(
        f"{API}/referrals/{referral.id}/messages",
        json={"channels": ["sms", "sms"], "subject": "Hello", "message": "News"},
        headers=admin.headers(),
    )
    body = assert_problem(response, 422, "validation-failed")
    assert "twice" in field_errors(body)["channels"]


# --- silent changes ----------------------------------------------------------------------


@pytest.mark.parametrize("country", ["ZZ", "EU", "UN", "XA", "QO"])
def test_a_country_code_that_is_no_country_is_422(client, factory, country):
    agency = factory.agency()
    payload = referral_payload(patient={"country": country})
    response = client.post(f"{API}/referrals", json=payload, headers=agency.headers())
    body = assert_problem(response, 422, "validation-failed")
    assert "ISO 3166-1" in field_errors(body)["patient.country"]


def test_a_fractional_pain_score_is_422_not_rounded(client, factory):
    agency = factory.agency()
    payload = referral_payload(intake={"pain_score": 7.5})
    response = client.post(f"{API}/referrals", json=payload, headers=agency.headers())
    body = assert_problem(response, 422, "validation-failed")
    assert "intake.pain_score" in field_errors(body)


@pytest.mark.parametrize("language", ["e" * 200, "en-" + "x" * 197, "en-ZZ", "zh-Hant-TW"])
def test_a_language_tag_that_would_be_shortened_or_replaced_is_422(client, factory, language):
    agency = factory.agency()
    payload = referral_payload(patient={"language": language})
    response = client.post(f"{API}/referrals", json=payload, headers=agency.headers())
    body = assert_problem(response, 422, "validation-failed")
    assert "patient.language" in field_errors(body)


def test_a_language_with_a_region_is_kept_as_given(client, factory):
    agency = factory.agency()
    payload = referral_payload(patient={"language": "pt_br"})
    response = client.post(f"{API}/referrals", json=payload, headers=agency.headers())
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["patient"]["language"] == "pt-BR"


# --- unknown query parameters ------------------------------------------------------------


def test_an_unknown_query_parameter_on_a_list_is_422_naming_it(client, admin):
    response = client.get(f"{API}/referrals?owner=mine", headers=admin.headers())
    body = assert_problem(response, 422, "validation-failed")
    assert field_errors(body) == {"query.owner": "not a field this endpoint takes"}


def test_every_route_refuses_an_unknown_query_parameter(client, spec, admin, referral):
    for path, method, _operation in _operations(spec):
        url = _real(path, referral)
        response = _send(client, method, url, admin.headers(), query_string={"owner": "mine"})
        body = assert_problem(response, 422, "validation-failed")
        assert "query.owner" in field_errors(body), (method, url)


# --- the OpenAPI document tells the truth about errors -----------------------------------


def test_every_documented_error_is_a_problem_sent_as_problem_json(spec):
    responses = spec["components"]["responses"]
    checked = 0
    for _path, _method, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if status != "default" and int(status) < 400:
                continue
            if "$ref" in response:
                response = responses[response["$ref"].rsplit("/", 1)[1]]
            assert list(response["content"]) == ["application/problem+json"], (status, response)
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}
            checked += 1
    assert checked >= 40
    assert {"type", "title", "status", "detail", "errors"} <= set(
        spec["components"]["schemas"]["Problem"]["properties"]
    )


# --- errors read as a person would read them ---------------------------------------------


def test_broken_json_is_described_without_werkzeug_text(client, factory):
    agency = factory.agency()
    response = client.post(
        f"{API}/referrals",
        data='{"procedure": ',
        content_type="application/json",
        headers=agency.headers(),
    )
    body = assert_problem(response, 400, "bad-request")
    assert "browser (or proxy)" not in body["detail"]
    assert body["detail"].startswith("The body is not valid JSON: expecting value at line 1")


def test_a_wrong_list_item_in_a_query_names_its_position_and_value(client, admin):
    response = client.get(f"{API}/referrals?stage=enquiry&stage=lead", headers=admin.headers())
    body = assert_problem(response, 422, "validation-failed")
    reason = field_errors(body)["query.stage[1]"]
    assert reason.startswith("'lead' is not one of: enquiry")


def test_a_schema_wide_error_names_the_object_not_schema(client, factory):
    agency = factory.agency()
    payload = referral_payload(patient={"phone": None, "email": None})
    response = client.post(f"{API}/referrals", json=payload, headers=agency.headers())
    body = assert_problem(response, 422, "validation-failed")
    assert all("_schema" not in error["field"] for error in body["errors"])
    assert "patient.phone" in field_errors(body)


def test_no_error_field_or_reason_is_a_python_repr(client, admin):
    response = client.put(
        f"{API}/message-templates/mri_reminder/en/sms",
        json={"source": "Hi {{ patient_first_name }}, about your disc surgery."},
        headers=admin.headers(),
    )
    body = assert_problem(response, 422, "validation-failed")
    reason = field_errors(body)["source"]
    assert "<re.Match" not in reason
    assert "'disc" in reason
