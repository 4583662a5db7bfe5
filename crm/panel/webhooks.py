"""The agency's webhooks page: its endpoints (enabled or disabled, and why), a form to add
one, secret rotation (the new secret shown on that one page), enable/disable/delete, and
the recent delivery log with a redelivery button. Every change is the API's own operation
called with the agency Actor; refusals are flashed in words."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from crm.auth.guards import current_actor
from crm.console.actions import attempt, attempt_quietly, in_words
from crm.core import audit
from crm.panel.auth import agency_page
from crm.panel.views import panel
from crm.webhooks import operations, queries
from crm.webhooks.catalogue import EVENT_TYPES

RECENT_DELIVERIES = 50


def _page(issued: Any = None, error: str | None = None, form: dict | None = None, status=200):
    actor = current_actor()
    agency_id = queries.agency_in_view(actor, None)
    log = queries.deliveries(agency_id, {"limit": RECENT_DELIVERIES})
    audit.record(actor, "webhook_delivery.list", agency_id=agency_id, count=len(log.items))
    page = render_template(
        "panel/webhooks.html",
        endpoints=queries.endpoints_of(agency_id),
        deliveries=log.items,
        event_types=EVENT_TYPES,
        issued=issued,
        error=error,
        form=form or {"url": "", "description": "", "event_types": list(EVENT_TYPES)},
    )
    return page, status


def _back():
    return redirect(url_for("panel.webhooks"), 303)


def _endpoint(endpoint_id: int):
    return queries.endpoint_for(current_actor(), endpoint_id, for_update=True)


@panel.get("/webhooks")
@agency_page
def webhooks():
    return _page()


@panel.post("/webhooks")
@agency_page
def add_webhook():
    form = {
        "url": request.form.get("url", "").strip(),
        "description": request.form.get("description", "").strip(),
        "event_types": request.form.getlist("event_types"),
    }
    registered, refused = attempt_quietly(
        lambda: operations.register_endpoint(form, current_actor())
    )
    if refused is not None:
        return _page(error=in_words(refused), form=form, status=422)
    # Rendered, not redirected: the secret is on this one response and nowhere else.
    return _page(issued=registered)


@panel.post("/webhooks/<int:endpoint_id>/rotate")
@agency_page
def rotate_webhook_secret(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    rotated = attempt(lambda: operations.rotate_secret(endpoint, current_actor()))
    if rotated is None:
        return _back()
    return _page(issued=rotated)


@panel.post("/webhooks/<int:endpoint_id>/disable")
@agency_page
def disable_webhook(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    attempt(
        lambda: operations.disable_endpoint(endpoint, current_actor()),
        done=f"Endpoint {endpoint.url} is disabled: nothing is sent to it until you enable it.",
    )
    return _back()


@panel.post("/webhooks/<int:endpoint_id>/enable")
@agency_page
def enable_webhook(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    attempt(
        lambda: operations.enable_endpoint(endpoint, current_actor()),
        done=f"Endpoint {endpoint.url} is enabled again.",
    )
    return _back()


@panel.post("/webhooks/<int:endpoint_id>/delete")
@agency_page
def delete_webhook(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    url = endpoint.url
    attempt(
        lambda: operations.delete_endpoint(endpoint, current_actor()),
        done=f"Endpoint {url} is deleted, with its delivery log.",
    )
    return _back()


@panel.post("/webhooks/deliveries/<int:delivery_id>/redeliver")
@agency_page
def redeliver_webhook(delivery_id: int):
    actor = current_actor()
    delivery = queries.delivery_for(actor, delivery_id)
    made = attempt(lambda: operations.redeliver_event(delivery.event, [delivery.endpoint], actor))
    if made is not None:
        flash(f"Event {delivery.event.public_id} is queued to be sent again.")
    return _back()
