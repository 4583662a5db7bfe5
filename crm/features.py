"""Wiring: the one place where features are switched on for an app.

Each feature package has `register(wiring)` in its `subscribers.py`: it subscribes to the
events it reacts to and switches on the guards whose facts it owns. `create_app` wires
every feature; a test wires the ones it names (the `features` fixture). The pipeline
core (`crm.referrals`) never imports a feature: features subscribe to its events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import import_module

from flask import Flask

from crm.core import events
from crm.referrals import guards

# In the order their subscribers run for one event. Messaging cancels what a move made
# moot before the nudges write the new stage's messages; nudges go last, so a message
# sees every row the other reactions wrote (a check-in, a task). Duplicates go first: the
# referral's attribution is decided before anything else reacts to it.
ALL_FEATURES: tuple[str, ...] = (
    "duplicates",
    "documents",
    "reviews",
    "plans",
    "travel",
    "followup",
    "commission",
    "tasks",
    "messaging",
    "nudges",
    "reports",
    "webhooks",
)


@dataclass
class Wiring:
    events: events.EventBus = field(default_factory=events.EventBus)
    guards: guards.GuardRegistry = field(default_factory=guards.GuardRegistry)
    features: tuple[str, ...] = ()


def build(names: Iterable[str] = ALL_FEATURES) -> Wiring:
    chosen = tuple(names)
    unknown = sorted(set(chosen) - set(ALL_FEATURES))
    if unknown:
        raise ValueError(f"unknown features {unknown}; known: {', '.join(ALL_FEATURES)}")
    wiring = Wiring(features=tuple(name for name in ALL_FEATURES if name in chosen))
    for name in wiring.features:
        import_module(f"crm.{name}.subscribers").register(wiring)
    return wiring


def install(app: Flask, wiring: Wiring) -> None:
    app.extensions[events.EXTENSION] = wiring.events
    app.extensions[guards.EXTENSION] = wiring.guards
    app.extensions["crm.features"] = wiring


def wire(app: Flask, names: Iterable[str] = ALL_FEATURES) -> Wiring:
    wiring = build(names)
    install(app, wiring)
    return wiring
