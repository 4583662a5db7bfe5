"""Which guards are switched on, and the facts they read.

A feature that owns a fact (documents: an MRI is on file; reviews: the specialist's
decision; plans: an accepted plan with consent) registers a fact provider and switches
on the guard defined in `stages`. Until then the pipeline runs with the core guards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm.referrals.models import Referral
from crm.referrals.stages import CORE_GUARDS, Guard, Stage

FactProvider = Callable[[Referral], dict[str, Any]]

_guards: list[Guard] = list(CORE_GUARDS)
_fact_providers: list[FactProvider] = []
# The stages whose guards read each provider's facts: a move elsewhere need not ask.
_needed_for: dict[FactProvider, frozenset[Stage]] = {}


def register(guard: Guard, provider: FactProvider) -> None:
    if guard not in _guards:
        _guards.append(guard)
    if provider not in _fact_providers:
        _fact_providers.append(provider)
    _needed_for[provider] = _needed_for.get(provider, frozenset()) | guard.targets


def active_guards() -> tuple[Guard, ...]:
    return tuple(_guards)


def facts_for(referral: Referral, target: Stage | None = None) -> dict[str, Any]:
    """The facts the guards on a move to `target` read (all facts without a target)."""
    facts: dict[str, Any] = {}
    for provider in _fact_providers:
        needed = _needed_for.get(provider)
        if target is None or needed is None or target in needed:
            facts.update(provider(referral))
    return facts
