"""Running one operation for a console form: refused in words, never half-done.

`attempt(lambda: move_to_stage(...), done="Moved to MRI review.")` runs the operation in a
savepoint. A domain error (a guard, a validation, a conflict) rolls back whatever the
operation wrote and is flashed as an error in plain words; the view then redirects back
(303), and the request boundary commits only what succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from flask import flash

from crm.core.errors import DomainError, GuardFailed, ValidationFailed
from crm.extensions import db

T = TypeVar("T")
ERROR = "error"  # the flash category base.html shows as an alert


def attempt(action: Callable[[], T], done: str | None = None) -> T | None:
    """The operation's result, or None when it was refused (and the refusal flashed)."""
    result, refused = attempt_quietly(action)
    if refused is not None:
        flash(in_words(refused), ERROR)
    elif done:
        flash(done)
    return result


def attempt_quietly(action: Callable[[], T]) -> tuple[T | None, DomainError | None]:
    """The operation's result and its refusal, flashing nothing: for a form that shows each
    field's reason beside the field itself. Refused, nothing it wrote stays."""
    try:
        with db.session.begin_nested():
            return action(), None
    except DomainError as exc:
        return None, exc


def in_words(exc: DomainError) -> str:
    """A refusal as a sentence a coordinator reads: every failed guard's reason, every
    field's reason, or the error's own detail."""
    if isinstance(exc, GuardFailed) and exc.extensions.get("guards"):
        reasons = "; ".join(g["reason"] for g in exc.extensions["guards"])
        return f"Not done: {reasons}."
    if isinstance(exc, ValidationFailed):
        reasons = "; ".join(
            f"{e['field']}: {e['reason']}" if e.get("field") else e["reason"]
            for e in exc.extensions["errors"]
        )
        return f"Not accepted: {reasons}"
    return exc.detail


def flash_problems(errors: Mapping[str, str]) -> None:
    """The alert above a refused form whose fields show their own reasons: how many to
    correct; a reason about no one field ("form", "body") is said in the alert itself."""
    general = [errors[name] for name in ("form", "body") if name in errors]
    count = len(errors) - len(general)
    said = [f"{count} field{'s' if count != 1 else ''} to correct, each marked below"] * bool(count)
    flash(f"Not accepted: {'; '.join(general + said)}.", ERROR)
