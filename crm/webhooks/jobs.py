"""The webhook jobs the scheduler runs: deliver what is due, settle what a crash left.

The dispatcher commits inside its own protocol (claim and commit, POST, record the
answers and commit), so a job here is one dispatcher call.
"""

from __future__ import annotations

from flask import Flask

from crm.webhooks.dispatcher import WebhookDispatcher, WebhookSettings


def dispatcher_for(app: Flask, name: str) -> WebhookDispatcher:
    """One dispatcher (its thread pool and connection pools) for the life of a process."""
    return WebhookDispatcher(WebhookSettings.from_config(app.config["CRM"]), name=name)


def deliver_webhooks(dispatcher: WebhookDispatcher) -> int:
    """Deliver until nothing is due; how many deliveries were handled."""
    return dispatcher.pump()


def reconcile_webhooks(dispatcher: WebhookDispatcher) -> int:
    """Deliveries left `sending` by a dispatcher that died go back to `pending`."""
    return dispatcher.reconcile_stale()
