"""Which guards are switched on in this app, and the facts they read.

A feature that owns a fact (documents: an MRI is on file; reviews: the specialist's
decision; plans: an accepted plan with consent) switches on the guard defined in
`stages` with the provider of its fact, from its `register(wiring)`. The registry
belongs to the app (`app.extensions["crm.guards"]`); until a feature is wired the
pipeline runs with the core guards alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app

from crm.referrals.models import Referral
from crm.referrals.stages import CORE_GUARDS, Guard, Stage

EXTENSION = "crm.guards"
FactProvider = Callable[[Referral], dict[str, Any]]


class GuardRegistry:
    def __init__(self) -> None:
        self._guards: list[Guard] = list(CORE_GUARDS)
        # Each provider with the stages whose guards read it: a move elsewhere need not ask.
        self._providers: dict[FactProvider, frozenset[Stage]] = {}

    def switch_on(self, guard: Guard, provider: FactProvider) -> None:
        if guard not in self._guards:
            self._guards.append(guard)
        self._providers[provider] = self._providers.get(provider, frozenset()) | guard.targets

    def active(self) -> tuple[Guard, ...]:
        return tuple(self._guards)

    def facts_for(self, referral: Referral, target: Stage | None = None) -> dict[str, Any]:
        """The facts the guards on a move to `target` read (all facts without a target)."""
        facts: dict[str, Any] = {}
        for provider, needed_for in self._providers.items():
            if target is None or target in needed_for:
                facts.update(provider(referral))
        return facts


def registry() -> GuardRegistry:
    return current_app.extensions[EXTENSION]
