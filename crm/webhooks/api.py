"""Webhook endpoints, the event catalogue, the delivery log and redelivery: thin views over
crm.webhooks.operations and crm.webhooks.queries. An agency manages its own endpoints
(another agency's is a 404); managers and admins read an agency's (`?agency_id=`) and may
ask for a redelivery on its behalf."""

from __future__ import annotations

from crm.auth.guards import any_caller, caller_scope, current_actor
from crm.core import audit
from crm.core.blueprint import Blueprint
from crm.core.errors import NotFound
from crm.core.idempotency import idempotent
from crm.webhooks import operations, queries
from crm.webhooks.catalogue import EVENT_TYPES, PAYLOAD_VERSION
from crm.webhooks.schemas import (
    WebhookAgencyQueryArgs,
    WebhookDeliveryDetailSchema,
    WebhookDeliveryListArgs,
    WebhookDeliveryPageSchema,
    WebhookDeliverySchema,
    WebhookEndpointArgs,
    WebhookEndpointSchema,
    WebhookEndpointUpdateArgs,
    WebhookEndpointWithSecretSchema,
    WebhookEventTypeSchema,
    WebhookRangeRedeliverArgs,
    WebhookRangeRedeliverySchema,
    WebhookRedeliverArgs,
)

blp = Blueprint(
    "agency_webhooks",
    __name__,
    description="Webhooks to partner agencies: endpoints, secrets, the delivery log, "
    "redelivery. The events themselves are under `x-webhooks`.",
)


@blp.post("/webhooks/endpoints")
@idempotent(caller_scope)
@any_caller
@blp.arguments(WebhookEndpointArgs)
@blp.response(201, WebhookEndpointWithSecretSchema)
def create_endpoint(args):
    """Register an endpoint (https, a public host) for the events chosen. The answer holds
    its signing `secret`: shown this once, never again."""
    return operations.register_endpoint(args, current_actor())


@blp.get("/webhooks/endpoints")
@any_caller
@blp.arguments(WebhookAgencyQueryArgs, location="query")
@blp.response(200, WebhookEndpointSchema(many=True))
def list_endpoints(args):
    """The agency's endpoints, oldest first, enabled or not (and why)."""
    agency_id = queries.agency_in_view(current_actor(), args.get("agency_id"))
    return queries.endpoints_of(agency_id)


@blp.get("/webhooks/endpoints/<int:endpoint_id>")
@any_caller
@blp.response(200, WebhookEndpointSchema)
def get_endpoint(endpoint_id: int):
    return queries.endpoint_for(current_actor(), endpoint_id)


@blp.patch("/webhooks/endpoints/<int:endpoint_id>")
@any_caller
@blp.arguments(WebhookEndpointUpdateArgs)
@blp.response(200, WebhookEndpointSchema)
def update_endpoint(args, endpoint_id: int):
    """Change the URL (checked again), the description or the event types."""
    endpoint = queries.endpoint_for(current_actor(), endpoint_id, for_update=True)
    return operations.update_endpoint(endpoint, args, current_actor())


@blp.delete("/webhooks/endpoints/<int:endpoint_id>")
@any_caller
@blp.response(204)
def delete_endpoint(endpoint_id: int):
    """The endpoint, its secrets and its delivery log go."""
    endpoint = queries.endpoint_for(current_actor(), endpoint_id, for_update=True)
    operations.delete_endpoint(endpoint, current_actor())


@blp.post("/webhooks/endpoints/<int:endpoint_id>/rotate-secret")
@idempotent(caller_scope)
@any_caller
@blp.response(201, WebhookEndpointWithSecretSchema)
def rotate_secret(endpoint_id: int):
    """A new secret (in this answer only); the old one still signs beside it for
    CRM_WEBHOOK_SECRET_OVERLAP_HOURS, so switch your verifier within that time."""
    endpoint = queries.endpoint_for(current_actor(), endpoint_id, for_update=True)
    return operations.rotate_secret(endpoint, current_actor())


@blp.post("/webhooks/endpoints/<int:endpoint_id>/enable")
@idempotent(caller_scope)
@any_caller
@blp.response(200, WebhookEndpointSchema)
def enable_endpoint(endpoint_id: int):
    """Deliver to it again (after it was disabled by you or by repeated failures)."""
    endpoint = queries.endpoint_for(current_actor(), endpoint_id, for_update=True)
    return operations.enable_endpoint(endpoint, current_actor())


@blp.post("/webhooks/endpoints/<int:endpoint_id>/disable")
@idempotent(caller_scope)
@any_caller
@blp.response(200, WebhookEndpointSchema)
def disable_endpoint(endpoint_id: int):
    """Stop delivering to it; events of its types are still kept for a later redelivery."""
    endpoint = queries.endpoint_for(current_actor(), endpoint_id, for_update=True)
    return operations.disable_endpoint(endpoint, current_actor())


@blp.get("/webhooks/event-types")
@any_caller
@blp.response(200, WebhookEventTypeSchema(many=True))
def event_types():
    """What an endpoint may subscribe to; each body is documented under `x-webhooks`."""
    return [
        {"name": name, "description": text, "version": PAYLOAD_VERSION}
        for name, text in EVENT_TYPES.items()
    ]


@blp.get("/webhooks/deliveries")
@any_caller
@blp.arguments(WebhookDeliveryListArgs, location="query")
@blp.response(200, WebhookDeliveryPageSchema)
def list_deliveries(args):
    """The delivery log, newest first: event, endpoint, status, attempts, the last answer's
    status code, times; follow `next_cursor`."""
    actor = current_actor()
    agency_id = queries.agency_in_view(actor, args.get("agency_id"))
    page = queries.deliveries(agency_id, args)
    audit.record(actor, "webhook_delivery.list", agency_id=agency_id, count=len(page.items))
    return page


@blp.get("/webhooks/deliveries/<int:delivery_id>")
@any_caller
@blp.response(200, WebhookDeliveryDetailSchema)
def get_delivery(delivery_id: int):
    """One delivery with every attempt (time, duration, status code or error) and the
    body sent."""
    return queries.delivery_detail(current_actor(), delivery_id)


@blp.post("/webhooks/events/<string:public_id>/redeliver")
@idempotent(caller_scope)
@any_caller
@blp.arguments(WebhookRedeliverArgs)
@blp.response(201, WebhookDeliverySchema(many=True))
def redeliver_event(args, public_id: str):
    """Send an event again (same `webhook-id`) to the endpoint named, or to every endpoint
    that had it; a disabled endpoint is a 409."""
    actor = current_actor()
    event = queries.event_for(actor, public_id)
    if args.get("endpoint_id") is not None:
        endpoints = [queries.endpoint_for(actor, args["endpoint_id"])]
        if endpoints[0].agency_id != event.agency_id:
            raise NotFound(f"no webhook endpoint {args['endpoint_id']}")
    else:
        endpoints = queries.endpoints_that_had(event)
    return operations.redeliver_event(event, endpoints, actor)


@blp.post("/webhooks/redeliver")
@idempotent(caller_scope)
@any_caller
@blp.arguments(WebhookRangeRedeliverArgs)
@blp.response(202, WebhookRangeRedeliverySchema)
def redeliver_range(args):
    """Every event of the endpoint's types that occurred in [since, until) again, oldest
    first; at most 10,000 events a request (a larger range is a 422: ask in parts)."""
    endpoint = queries.endpoint_for(current_actor(), args["endpoint_id"], for_update=True)
    return operations.redeliver_range(endpoint, args["since"], args["until"], current_actor())
