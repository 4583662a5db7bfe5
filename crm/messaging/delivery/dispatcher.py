"""Sending what the outbox holds: claim, send, record; retry the transient, never twice.

A dispatcher claims a small batch of due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL,
so any number run at once; on SQLite the guarded UPDATE alone keeps claims exclusive),
marks them `sending` and commits *before* calling the provider. The batch's outcomes
commit together at its end (a commit per message would cost a disk flush per message). A
process killed before that commit leaves its rows in `sending`; `reconcile_stale` later
asks the provider what it holds for each number since the claim and adopts the message it
finds, or requeues the row if there is none: nothing is lost and no SMS goes twice. An SMS
send that gets no answer at all (a timeout) is ambiguous in the same way and is left in
`sending` for the same reconciliation, rather than resent blindly.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from crm.core import metrics
from crm.core.actors import patient_actor
from crm.core.db import utcnow
from crm.extensions import db
from crm.messaging.composing.fallback import fall_back_to_sms
from crm.messaging.composing.outbox import NO_WHATSAPP_TEMPLATE, cancel_stale
from crm.messaging.composing.whatsapp_templates import load_whatsapp_templates
from crm.messaging.delivery.batch import (
    PHONE_CHANNELS,
    Claimed,
    claim_statements,
    record_sent,
    withheld,
)
from crm.messaging.delivery.email import EmailError, OutgoingEmail
from crm.messaging.delivery.quiet_hours import next_allowed_send, parse_window
from crm.messaging.delivery.sms import PermanentSmsError, SmsError, mask_phone
from crm.messaging.delivery.transports import Transports
from crm.messaging.delivery.whatsapp import WhatsAppSend, decide
from crm.messaging.events import StatusChange, announce, change
from crm.messaging.models import OutboxMessage
from crm.messaging.session import last_inbound
from crm.patients import consent_sources
from crm.patients.links import unsubscribe_url
from crm.patients.models import Patient
from crm.patients.operations import set_own_consent

log = logging.getLogger(__name__)
_OUTBOX = OutboxMessage.__table__

BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=2)


@dataclass(frozen=True)
class DispatchSettings:
    batch_size: int = 20
    max_attempts: int = 6
    stale_after: timedelta = timedelta(seconds=120)
    quiet_hours: str = "21:00-08:30"
    whatsapp_templates_file: str = "config/whatsapp_templates.toml"
    # Where a patient's reply to our email goes: the coordinators' shared inbox, so the
    # emails' "reply to this email" reaches someone whatever the From address is.
    patient_reply_to: str | None = None

    @classmethod
    def from_config(cls, settings: dict) -> DispatchSettings:
        return cls(
            batch_size=settings["DISPATCH_BATCH_SIZE"],
            max_attempts=settings["DISPATCH_MAX_ATTEMPTS"],
            stale_after=timedelta(seconds=settings["DISPATCH_STALE_SECONDS"]),
            quiet_hours=settings["QUIET_HOURS"],
            whatsapp_templates_file=settings["WHATSAPP_TEMPLATES_FILE"],
            patient_reply_to=settings["COORDINATOR_EMAIL"] or None,
        )


def backoff(attempt: int, rng: random.Random | None = None) -> timedelta:
    """Exponential with full jitter: a random wait up to base * 2**(attempt-1), capped."""
    ceiling = min(BACKOFF_BASE * (2 ** max(attempt - 1, 0)), BACKOFF_CAP)
    return ceiling * (rng or random).uniform(0.5, 1.0)


def _is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _writing():
    """A savepoint around one message's writes (a message that goes out writes nothing
    until the batch's end): an error inside undoes those writes alone, and the caller's
    outcomes for the message are appended as the block's last step, so they are kept
    exactly when its writes are."""
    return db.session.begin_nested()


class Dispatcher:
    """Per message that goes out: the provider call and nothing else (a withheld, deferred
    or failed one: a savepoint and its guarded UPDATE). Per batch: one claim (a SELECT ...
    SKIP LOCKED that also reads consents and the moved-on test, an UPDATE ... RETURNING,
    a commit), then one write of the sent rows, one rollup upsert and one commit. In a drain
    (`drain`) a batch's write and the next batch's claim share that last commit."""

    def __init__(self, transports: Transports, settings: DispatchSettings, name: str = "") -> None:
        self.transports = transports
        self.settings = settings
        self.name = name or f"dispatcher-{uuid.uuid4().hex[:8]}"
        self.quiet_window = parse_window(settings.quiet_hours)
        self._sessions: dict[str, datetime] = {}

    def run_once(self, now: datetime | None = None) -> int:
        """Claim one batch and send it; returns how many rows were handled."""
        batch = self.claim(now or utcnow())
        self._send_batch(batch)
        return len(batch)

    def drain(self, now: datetime | None = None) -> int:
        """Batch after batch until nothing is due; returns how many rows were handled.

        Each batch's outcomes and the next batch's claim commit together: one transaction a
        batch instead of two. The claim still commits before any of its sends. A batch claimed
        and not yet sent when the process stops (or when an error ends the drain) is left
        `sending`, like a batch cut off mid-send, for `reconcile_stale`: no copy at the
        provider, so it is requeued and sent once."""
        handled, batch = 0, self.claim(now or utcnow())
        while batch:
            handled += len(batch)
            batch = self._send_batch(batch, claim_next=True, now=now)
        return handled

    def _send_batch(
        self, batch: list[Claimed], claim_next: bool = False, now: datetime | None = None
    ) -> list[Claimed]:
        """Send `batch`, write its outcomes and commit them. With `claim_next` the next batch
        (due at `now`, default the time of the claim) is claimed in the same transaction and
        returned, its claim's commit being this batch's; else [] is returned."""
        # WhatsApp's 24-hour sessions of the batch's numbers, in one read.
        self._sessions = last_inbound(m.to_address for m in batch if m.channel == "whatsapp")
        sent: list[dict] = []
        changes: list[StatusChange] = []
        for message in batch:
            settled: list[StatusChange] = []
            try:
                # A message that goes out writes nothing here (its outcome joins the batch's
                # one write below); a message that is withheld, deferred or fails writes in
                # a savepoint of its own (`_writing`), so an unforeseen error undoes that
                # message's writes alone, never the outcomes recorded for the others.
                self._send(message, sent, settled)
                changes += settled
            except Exception:
                # It must not stop the batch either. The row stays `sending`; the reconciler
                # adopts the provider's copy or requeues it, up to max attempts.
                log.exception("dispatch failed", extra={"outbox_id": message.id})
        changes += record_sent(sent, {m.id: m for m in batch}, _is_postgres())
        announce(changes)  # the batch's outcomes, one event (reports: one write)
        following: list[Claimed] = []
        if claim_next:
            following = self.claim(now or utcnow())  # commits this batch's outcomes with it
        else:
            db.session.commit()
        metrics.count_dispatch(changes)
        return following

    def claim(self, now: datetime) -> list[Claimed]:
        token = f"{self.name}:{uuid.uuid4().hex[:12]}"
        due, take = claim_statements(_is_postgres())
        # Core statements on the session's connection: plain rows, no ORM bookkeeping.
        connection = db.session.connection()
        rows = connection.execute(due, {"now": now, "size": self.settings.batch_size}).all()
        if not rows:
            db.session.commit()
            return []
        # Each row's consent comes with it (see PATIENT_EXISTS): checked again at send time.
        consent = {row.id: (row.patient_exists, row.consent_granted) for row in rows}
        # Written for a stage the referral has left: cancelled, not sent. `moved_on` is
        # cancel_stale's own test, read here with the batch, so the cancelling UPDATE (which
        # tests again) runs only for a batch that holds such a row.
        if stale := [row.id for row in rows if row.moved_on]:
            cancel_stale(stale)
        claimed = connection.execute(take, {"ids": list(consent), "token": token, "now": now})
        rows = claimed.all()
        db.session.commit()
        return sorted((Claimed(*row, *consent[row.id]) for row in rows), key=lambda m: m.id)

    def _send(
        self,
        message: Claimed,
        sent: list[dict],
        settled: list[StatusChange],
    ) -> None:
        now = utcnow()
        if reason := withheld(message):
            with _writing():
                self._settle_row(message, status="suppressed", suppressed_reason=reason)
                settled.append(change(message, "sending", None, "suppressed", reason))
            return
        if message.channel in PHONE_CHANNELS and message.audience == "patient":
            allowed = next_allowed_send(now, message.time_zone, self.quiet_window)
            if allowed > now:
                with _writing():
                    self._requeue(message, allowed, count_attempt=False)
                return
        how = None
        if message.channel == "whatsapp":
            how = self._whatsapp(message, now, settled)
            if how is None:
                return
        try:
            provider_id = self._hand_over(message, how)
        except (SmsError, EmailError) as exc:
            with _writing():
                if self._failed_attempt(message, exc, now):
                    settled.append(change(message, "sending", None, "failed"))
            return
        sent.append(
            {
                "b_id": message.id,
                "b_token": message.token,
                "b_provider": provider_id,
                "b_now": now,
                "b_content_sid": how.content_sid if how else None,
                "b_content_variables": how.content_variables if how else None,
            }
        )
        log.info("message sent", extra={"outbox_id": message.id, "channel": message.channel})

    def _mine(self, message: Claimed):
        return (
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id, OutboxMessage.claimed_by == message.token)
            .execution_options(synchronize_session=False)
        )

    def _settle_row(self, message: Claimed, **values) -> None:
        db.session.execute(self._mine(message).values(**values))

    def _whatsapp(
        self, message: Claimed, now: datetime, settled: list[StatusChange]
    ) -> WhatsAppSend | None:
        """Free text in the session, else the approved template; neither: suppressed here
        (and its SMS twin written when the rule allowed a fallback), None returned."""
        how = decide(
            message.kind,
            message.language,
            message.template_values,
            self._sessions.get(message.to_address),
            now,
            load_whatsapp_templates(self.settings.whatsapp_templates_file),
        )
        if how is None:
            with _writing():
                reason = NO_WHATSAPP_TEMPLATE
                self._settle_row(message, status="suppressed", suppressed_reason=reason)
                moved = [change(message, "sending", None, "suppressed", reason)]
                row = db.session.get(OutboxMessage, message.id)
                if message.fallback_channel == "sms" and row is not None:
                    twin = fall_back_to_sms(row, now)
                    if twin is not None:
                        moved.append(change(twin, None, None, twin.status, twin.suppressed_reason))
                settled += moved
        return how

    def _gateway(self, channel: str):
        if channel == "whatsapp":
            if self.transports.whatsapp is None:
                raise PermanentSmsError("no WhatsApp sender configured (CRM_TWILIO_WHATSAPP_FROM)")
            return self.transports.whatsapp
        return self.transports.sms

    def _hand_over(self, message: Claimed, how: WhatsAppSend | None = None) -> str:
        if message.channel in PHONE_CHANNELS:
            callback = self.transports.status_callback_url
            if callback:
                callback = f"{callback}?outbox={message.id}"
            gateway = self._gateway(message.channel)
            if how is not None and not how.free_text:
                result = gateway.send(
                    message.to_address,
                    message.body_text,
                    callback,
                    content_sid=how.content_sid,
                    content_variables=how.content_variables,
                )
            else:
                result = gateway.send(message.to_address, message.body_text, callback)
            return result.provider_id
        return self.transports.email.send(
            OutgoingEmail(
                to=message.to_address,
                subject=message.subject or "",
                text=message.body_text,
                html=message.body_html,
                headers={"X-CRM-Message": str(message.id)},
                reply_to=self.settings.patient_reply_to if message.patient_id else None,
                unsubscribe_url=(
                    unsubscribe_url(message.patient_id) if message.patient_id else None
                ),
            )
        )

    def _failed_attempt(self, message: Claimed, exc: Exception, now: datetime) -> bool:
        """Requeue, leave `sending` or fail the row; True when it failed for good."""
        error = {
            "error_code": str(getattr(exc, "code", "") or "") or None,
            "error_message": str(exc)[:500],
        }
        if getattr(exc, "transient", False) and message.attempts < self.settings.max_attempts:
            if isinstance(exc, SmsError) and exc.status is None:
                # No answer (timeout, dropped connection): Twilio may have accepted it.
                # Stay `sending`; reconcile_stale adopts the provider's copy or requeues.
                self._settle_row(message, **error)
                return False
            self._requeue(message, now + backoff(message.attempts), **error)
            return False
        self._settle_row(message, status="failed", **error)
        if isinstance(exc, PermanentSmsError) and exc.opted_out and message.patient_id:
            patient = db.session.get(Patient, message.patient_id)
            if patient is not None:  # withdrawn on the channel it was refused on alone
                source = consent_sources.CARRIER_OPT_OUT
                set_own_consent(patient, message.channel, False, source, patient_actor(patient.id))
        log.warning(
            "message failed",
            extra={"outbox_id": message.id, "to": mask_phone(message.to_address)},
        )
        return True

    def _requeue(
        self, message: Claimed, when: datetime, count_attempt: bool = True, **values
    ) -> None:
        attempts = message.attempts if count_attempt else max(message.attempts - 1, 0)
        self._settle_row(
            message,
            status="queued",
            next_attempt_at=when,
            claimed_by=None,
            attempts=attempts,
            **values,
        )

    def reconcile_stale(self, now: datetime | None = None) -> int:
        """Settle rows left in `sending` by a dispatcher that died mid-send."""
        now = now or utcnow()
        stale = (
            select(OutboxMessage)
            .where(
                OutboxMessage.status == "sending",
                OutboxMessage.claimed_at < now - self.settings.stale_after,
            )
            .order_by(OutboxMessage.claimed_at)
            .limit(self.settings.batch_size)
        )
        if _is_postgres():
            stale = stale.with_for_update(skip_locked=True)
        rows = list(db.session.scalars(stale))
        changes = []
        for message in rows:
            self._settle(message, now)
            if message.status == "sent":
                changes.append(change(message, "sending", None, "sent"))
        announce(changes)
        db.session.commit()
        return len(rows)

    def _settle(self, message: OutboxMessage, now: datetime) -> None:
        if message.channel in PHONE_CHANNELS:
            try:
                found = self._provider_copy(message)
            except SmsError as exc:
                log.warning("reconcile: provider unavailable, retry later: %s", exc)
                return  # the provider cannot tell us now: ask again next time, never guess
            if found is not None:
                message.status, message.provider_id = "sent", found
                message.sent_at = message.sent_at or now
                return
        # Nothing at the provider (or email, which no SMTP server lets us ask about):
        # send again. Email keeps at-least-once semantics here; see README. The claim
        # counted an attempt and it stays counted, so a message whose sends never get an
        # answer still reaches max_attempts.
        message.status, message.next_attempt_at, message.claimed_by = "queued", now, None

    def _provider_copy(self, message: OutboxMessage) -> str | None:
        since = message.claimed_at or message.created_at
        if message.channel == "whatsapp" and self.transports.whatsapp is None:
            return None  # nothing can have gone: no WhatsApp sender
        candidates = self._gateway(message.channel).messages_to(message.to_address, since)
        adopted = set(
            db.session.scalars(
                select(OutboxMessage.provider_id).where(
                    OutboxMessage.to_address == message.to_address,
                    OutboxMessage.provider_id.is_not(None),
                )
            )
        )
        for candidate in candidates:
            if candidate.body == message.body_text and candidate.provider_id not in adopted:
                return candidate.provider_id
        return None
