"""The pipeline board: a column per stage with its count, a card per referral (the oldest
in the stage first), filters, and a "Move to" form on each card that runs the same guarded
operation as `POST /api/v1/referrals/<id>/transitions`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import current_app, flash, redirect, render_template, request, url_for

from crm.auth.guards import current_actor, role_allows
from crm.console.actions import ERROR, attempt
from crm.console.auth import safe_next, staff_page
from crm.console.referral import stage_label
from crm.console.views import console
from crm.conversation.queries import unread_counts
from crm.core.db import utcnow
from crm.core.errors import NotFound
from crm.referrals.board import COUNTED, BoardFilters, filter_choices, pipeline_board
from crm.referrals.operations import move_to_stage
from crm.referrals.queries import referral_for
from crm.referrals.stages import ALL_STAGES, LostReason, Stage, allowed_targets
from crm.tasks.queries import card_markers

# The roles of POST /api/v1/referrals/<id>/transitions (crm/referrals/api.py, staff_only).
MOVERS = ("coordinator", "specialist", "manager")
LOST_REASONS = [(str(reason), reason.replace("_", " ").capitalize()) for reason in LostReason]


def _id(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) <= 10 else None


def _filters(args: Any) -> BoardFilters:
    """The board's GET form: agency (an id or `direct`), owner (an id or `unassigned`),
    procedure code, patient language. Anything unreadable is ignored."""
    agency, owner = args.get("agency", ""), args.get("owner", "")
    return BoardFilters(
        agency_id=_id(agency),
        direct=agency == "direct",
        owner_id=_id(owner),
        unassigned=owner == "unassigned",
        procedure=args.get("procedure", "").strip()[:50] or None,
        language=args.get("language", "").strip()[:8] or None,
    )


def _search_link(stage: str, filters: BoardFilters) -> str:
    """The search page listing a stage under the same filters (those the search takes)."""
    params: dict[str, Any] = {"stage": stage}
    if filters.agency_id is not None:
        params["agency_id"] = filters.agency_id
    if filters.direct:
        params["direct"] = "true"
    if filters.owner_id is not None:
        params["owner_id"] = filters.owner_id
    if filters.unassigned:
        params["unassigned"] = "true"
    if filters.procedure:
        params["procedure"] = filters.procedure
    return url_for("console.search") + "?" + urlencode(params)


@console.get("/board")
@staff_page()
def board():
    actor, filters = current_actor(), _filters(request.args)
    found = pipeline_board(actor, filters, current_app.config["CRM"], utcnow())
    return render_template(
        "console/board.html",
        board=found,
        markers=card_markers(found.referral_ids),
        unread=unread_counts(found.referral_ids),
        filters=filters,
        choices=filter_choices(),
        counted=COUNTED,
        search_link=_search_link,
        may_move=role_allows(actor, MOVERS),
        targets=_targets,
        lost_reasons=LOST_REASONS,
        here=request.full_path if request.query_string else request.path,
    )


def _targets(card) -> list[Stage]:
    held = Stage(card.held_from_stage) if card.held_from_stage else None
    order = {stage: n for n, stage in enumerate(ALL_STAGES)}
    return sorted(allowed_targets(Stage(card.stage), held), key=order.__getitem__)


@console.post("/board/move")
@staff_page(*MOVERS)
def board_move():
    actor = current_actor()
    referral_id = _id(request.form.get("referral_id"))
    if referral_id is None:
        raise NotFound("no such referral")
    referral = referral_for(actor, referral_id, for_update=True)  # 404 page when missing
    back = _back(request.form.get("back"), referral.id)
    target = request.form.get("to", "")
    if target not in ALL_STAGES:
        flash(f"{referral.reference} was not moved: choose a stage to move it to.", ERROR)
        return redirect(back, 303)
    reason = (request.form.get("reason") or None) if target == Stage.LOST else None
    note = request.form.get("note", "").strip()[:5000] or None
    before = referral.stage
    moved = attempt(
        lambda: move_to_stage(referral, target, actor, reason, note),
        done=f"{referral.reference} moved to {stage_label(target)}.",
    )
    if moved is None:
        flash(f"{referral.reference} was not moved: it stays in {stage_label(before)}.", ERROR)
    return redirect(back, 303)


def _back(target: str | None, referral_id: int) -> str:
    """Back to the board the form was on (its filters kept), at the card moved."""
    place = safe_next(target)
    if place is None or not place.startswith(url_for("console.board")):
        place = url_for("console.board")
    return f"{place}#r-{referral_id}"


@console.app_template_filter("late_words")
def late_words(late) -> str:
    """How late, in words: `5 h` under two days (at least 1 h), else `3 d` (a no-break
    space keeps the number with its unit)."""
    hours = int(late.total_seconds() // 3600)
    if hours < 48:
        return f"{max(hours, 1)}\u00a0h"
    return f"{hours // 24}\u00a0d"
