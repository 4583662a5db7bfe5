"""The delivery jobs the scheduler runs: send what is due, settle what a crash left.

The dispatcher commits inside its own protocol (claim and commit, call the provider,
record the batch and commit, the next claim in the same commit), so a job here is one
dispatcher call.
"""

from __future__ import annotations

from flask import Flask

from crm.messaging.delivery.dispatcher import Dispatcher, DispatchSettings
from crm.messaging.delivery.transports import from_settings


def dispatcher_for(app: Flask, name: str) -> Dispatcher:
    """One dispatcher (and its provider connections) for the life of a process."""
    settings = app.config["CRM"]
    return Dispatcher(from_settings(settings), DispatchSettings.from_config(settings), name=name)


def dispatch(dispatcher: Dispatcher) -> int:
    """Claim, send and record batch after batch until nothing is due (each batch's record and
    the next one's claim in one transaction); how many messages it handled. One run a tick:
    `crm_job_runs_total{job="dispatch"}` and its duration cover the whole drain."""
    return dispatcher.drain()


def reconcile(dispatcher: Dispatcher) -> int:
    """Settle messages left in `sending` by a dispatcher that died mid-batch."""
    return dispatcher.reconcile_stale()
