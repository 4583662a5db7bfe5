"""`/agency/keys`: the agency's API keys. Create one (its secret on that one response),
rotate one (the successor's secret once, and until when the old key still works), revoke
one after a confirmation. Any of the agency's users may; the operations are the API's
(`crm.auth.operations`), with the agency Actor, so another agency's key is a 404."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from crm.agencies.queries import agency_by_id
from crm.auth import operations as auth
from crm.auth.guards import current_actor
from crm.console.actions import attempt
from crm.core import audit
from crm.panel.auth import agency_page
from crm.panel.views import panel

PAGE = "panel.keys"


def _page(issued=None, rotation=None):
    actor = current_actor()
    audit.record(actor, "agency_key.list", agency_id=actor.agency_id)
    rows = auth.keys_of_agency(actor.agency_id)
    return render_template(
        "panel/keys.html",
        rows=[(key, auth.key_state(key)) for key in rows],
        issued=issued,
        rotation=rotation,
    )


@panel.get("/keys")
@agency_page
def keys():
    return _page()


@panel.post("/keys")
@agency_page
def create_key():
    actor = current_actor()
    label = " ".join(request.form.get("label", "").split())[:200]
    issued = attempt(lambda: auth.issue_agency_key(agency_by_id(actor.agency_id), label, actor))
    if issued is None:
        return redirect(url_for(PAGE), 303)
    # Rendered, not redirected: the secret is on this one response and nowhere else.
    return _page(issued=issued)


@panel.post("/keys/<int:key_id>/rotate")
@agency_page
def rotate_key(key_id: int):
    actor = current_actor()
    key = auth.agency_key_of(actor.agency_id, key_id, for_update=True)
    rotation = attempt(lambda: auth.rotate_agency_key(key, actor))
    if rotation is None:
        return redirect(url_for(PAGE), 303)
    return _page(issued=rotation.issued, rotation=rotation)


@panel.get("/keys/<int:key_id>/revoke")
@agency_page
def confirm_revoke(key_id: int):
    key = auth.agency_key_of(current_actor().agency_id, key_id)
    return render_template("panel/key_revoke.html", key=key, state=auth.key_state(key))


@panel.post("/keys/<int:key_id>/revoke")
@agency_page
def revoke_key(key_id: int):
    actor = current_actor()
    key = auth.agency_key_of(actor.agency_id, key_id, for_update=True)
    attempt(
        lambda: auth.revoke_agency_key(key.prefix, actor, agency_id=actor.agency_id),
        done=f"Key {key.prefix} is revoked: it no longer works.",
    )
    return redirect(url_for(PAGE), 303)
