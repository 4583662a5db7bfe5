"""`flask --app wsgi crm ...`: administration from the command line. Each command commits once."""

from __future__ import annotations

import click
from flask import current_app
from sqlalchemy import select

from crm.agencies.models import Agency
from crm.auth import operations as auth
from crm.auth.models import STAFF_ROLES, AgencyApiKey, StaffToken, StaffUser
from crm.core.errors import DomainError
from crm.extensions import db

crm_cli = click.Group("crm", help="Referral CRM administration.")


def _fail(exc: DomainError) -> None:
    db.session.rollback()
    raise click.ClickException(exc.detail)


def _agency_by_name(name: str) -> Agency:
    agency = db.session.scalar(select(Agency).where(Agency.name == name))
    if agency is None:
        raise click.ClickException(f"no agency named {name!r}")
    return agency


def _country(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from marshmallow import ValidationError

    from crm.patients.validation import normalise_country

    try:
        return normalise_country(value)
    except ValidationError as exc:
        raise click.BadParameter(" ".join(exc.messages)) from exc


@crm_cli.command("create-agency")
@click.argument("name")
@click.option(
    "--country", required=True, callback=_country, help="ISO 3166-1 alpha-2 code, e.g. DE"
)
@click.option("--email", "contact_email", default=None)
@click.option("--commission-bp", default=0, type=click.IntRange(0, 10000), help="basis points")
def create_agency(name: str, country: str, contact_email: str | None, commission_bp: int) -> None:
    """Create an agency; its first API key is printed alone on the last line."""
    if db.session.scalar(select(Agency.id).where(Agency.name == name)):
        raise click.ClickException(f"an agency named {name!r} exists already")
    agency = Agency(
        name=name,
        country=country,
        contact_email=contact_email,
        commission_basis_points=commission_bp,
    )
    db.session.add(agency)
    db.session.flush()
    issued = auth.issue_agency_key(agency, label="first key")
    db.session.commit()
    click.echo(f"agency {agency.id} created; API key (shown once, store it now):", err=True)
    click.echo(issued.secret)


@crm_cli.command("create-key")
@click.argument("agency_name")
@click.option("--label", default="")
def create_key(agency_name: str, label: str) -> None:
    """Issue another API key for an agency; printed alone on the last line."""
    issued = auth.issue_agency_key(_agency_by_name(agency_name), label=label)
    db.session.commit()
    click.echo(issued.secret)


def _credential_row(credential: AgencyApiKey | StaffToken) -> str:
    """One key or token, tab-separated: prefix, label, created, last used, state."""
    used = credential.last_used_at
    return "\t".join(
        [
            credential.prefix,
            credential.label or "-",
            credential.created_at.isoformat(timespec="seconds"),
            used.isoformat(timespec="seconds") if used else "never",
            f"revoked {credential.revoked_at:%Y-%m-%d}" if credential.revoked_at else "active",
        ]
    )


@crm_cli.command("list-keys")
@click.argument("agency_name")
def list_keys(agency_name: str) -> None:
    """An agency's keys: prefix, label, created, last used, revoked. Never the secret."""
    agency = _agency_by_name(agency_name)
    keys = db.session.scalars(
        select(AgencyApiKey).where(AgencyApiKey.agency_id == agency.id).order_by(AgencyApiKey.id)
    )
    for key in keys:
        click.echo(_credential_row(key))


@crm_cli.command("revoke-key")
@click.argument("prefix")
def revoke_key(prefix: str) -> None:
    """Revoke an API key by its visible prefix (crm_ak_xxxxxxxx)."""
    try:
        auth.revoke_agency_key(prefix)
    except DomainError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(f"revoked {prefix}")


@crm_cli.command("create-staff")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(STAFF_ROLES))
@click.option("--password", default=None, help="omit for a token-only user")
def create_staff(email: str, name: str, role: str, password: str | None) -> None:
    """Create a staff user and a personal API token, printed alone on the last line."""
    if db.session.scalar(select(StaffUser.id).where(StaffUser.email == email.lower())):
        raise click.ClickException(f"a staff user {email} exists already")
    try:
        user = auth.create_staff_user(email, name, role, password)
        issued = auth.issue_staff_token(user, label="cli")
    except DomainError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(f"staff user {user.id} ({role}) created; token (shown once):", err=True)
    click.echo(issued.secret)


@crm_cli.command("create-token")
@click.argument("email")
@click.option("--label", default="")
def create_token(email: str, label: str) -> None:
    """Issue another personal API token for a staff user."""
    user = db.session.scalar(select(StaffUser).where(StaffUser.email == email.lower()))
    if user is None:
        raise click.ClickException(f"no staff user {email}")
    issued = auth.issue_staff_token(user, label=label)
    db.session.commit()
    click.echo(issued.secret)


def _staff_by_email(email: str) -> StaffUser:
    user = db.session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"no staff user {email}")
    return user


token_cli = click.Group("token", help="A staff user's personal API tokens.")
crm_cli.add_command(token_cli)


@token_cli.command("create")
@click.argument("email")
@click.option("--label", default="")
def token_create(email: str, label: str) -> None:
    """Issue a token for a staff user; the secret alone on the last line, shown once."""
    try:
        issued = auth.issue_staff_token(_staff_by_email(email), label=label)
    except DomainError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(f"token {issued.prefix} created (shown once, store it now):", err=True)
    click.echo(issued.secret)


@token_cli.command("list")
@click.argument("email")
def token_list(email: str) -> None:
    """A staff user's tokens: prefix, label, created, last used, state. Never the secret."""
    for token in auth.staff_tokens(_staff_by_email(email)):
        click.echo(_credential_row(token))


@token_cli.command("revoke")
@click.argument("prefix")
def token_revoke(prefix: str) -> None:
    """Revoke a staff token by its visible prefix (crm_st_xxxxxxxx)."""
    try:
        auth.revoke_staff_token(prefix)
    except DomainError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(f"revoked {prefix}")


@crm_cli.command("send-password-link")
@click.argument("email")
@click.option("--reset", is_flag=True, help="a reset link (default: a set link for a new user)")
def send_password_link(email: str, reset: bool) -> None:
    """Email a staff user a one-time link to set (or reset) their console password."""
    from crm.auth.passwords import send_password_link as send

    send(_staff_by_email(email), "reset" if reset else "set")
    db.session.commit()
    click.echo(f"a password link for {email} is in the outbox")


@crm_cli.command("reset-second-factor")
@click.argument("email")
def reset_second_factor(email: str) -> None:
    """Forget a staff user's authenticator (a lost phone); they enrol again at sign-in."""
    from crm.auth import totp
    from crm.core.actors import SYSTEM

    totp.reset(_staff_by_email(email), SYSTEM)
    db.session.commit()
    click.echo(f"second factor of {email} reset")


@crm_cli.command("load-catalogue")
@click.option("--file", "path", default=None, help="defaults to CRM_CATALOGUE_FILE")
def load_catalogue(path: str | None) -> None:
    """Load or update the procedure catalogue from its data file."""
    from crm.catalogue.operations import load_catalogue as load

    try:
        created, updated = load(path or current_app.config["CRM"]["CATALOGUE_FILE"])
    except DomainError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(f"catalogue: {created} created, {updated} updated")


@crm_cli.command("load-nudge-rules")
@click.option("--file", "path", default=None, help="defaults to CRM_NUDGE_RULES_FILE")
def load_nudge_rules(path: str | None) -> None:
    """Load or update the nudge rules from their data file."""
    from crm.nudges.operations import load_rules

    try:
        created, updated = load_rules(path or current_app.config["CRM"]["NUDGE_RULES_FILE"])
    except DomainError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(f"nudge rules: {created} created, {updated} updated")


@crm_cli.command("load-demo")
def load_demo() -> None:
    """Demo data: two agencies (keys printed once), staff, a dozen referrals."""
    from crm.demo import load_demo_data

    try:
        lines = load_demo_data()
    except DomainError as exc:
        _fail(exc)
    db.session.commit()
    for line in lines:
        click.echo(line)


@crm_cli.command("purge-idempotency-keys")
def purge_idempotency_keys() -> None:
    """Delete expired Idempotency-Key records."""
    from crm.core.idempotency import purge_expired

    removed = purge_expired()
    db.session.commit()
    click.echo(f"removed {removed} expired keys")


reports_cli = click.Group("reports", help="Management reports.")
crm_cli.add_command(reports_cli)


@reports_cli.command("rebuild")
def rebuild_reports() -> None:
    """Recompute the report rollups from the source rows (in one transaction)."""
    from crm.referrals.sla import service_levels
    from crm.reports.rollups import rebuild

    written = rebuild(service_levels(current_app.config["CRM"]))
    db.session.commit()
    for table, rows in written.items():
        click.echo(f"{table}: {rows} rows")


documents_cli = click.Group("documents", help="Documents at rest: key rotation, legacy files.")
crm_cli.add_command(documents_cli)


@documents_cli.command("rewrap")
def documents_rewrap() -> None:
    """Re-wrap every document's data key under CRM_DOCUMENTS_ACTIVE_KEY_ID (no content is
    re-encrypted); afterwards the other master keys can be removed from the configuration."""
    from crm.documents.jobs import rewrap_all

    click.echo(f"re-wrapped {rewrap_all()} document key(s)")


@documents_cli.command("encrypt-legacy")
def documents_encrypt_legacy() -> None:
    """Encrypt in place the files stored before encryption at rest."""
    from crm.documents.jobs import encrypt_legacy

    done, failed = encrypt_legacy()
    click.echo(f"encrypted {done} stored file(s)")
    for sha in failed:
        click.echo(f"not encrypted (missing or not matching its hash): {sha}", err=True)
    if failed:
        raise SystemExit(1)


@crm_cli.command("retention")
@click.option("--dry-run", is_flag=True, help="list who would be erased and when; change nothing")
@click.option("--horizon-days", default=0, type=click.IntRange(0, 3650), help="dry run: also soon")
def retention(dry_run: bool, horizon_days: int) -> None:
    """Apply the retention periods (CRM_RETENTION_DAYS_AFTER_*), or show what they would do."""
    from crm.core.db import utcnow
    from crm.privacy.jobs import apply_retention
    from crm.privacy.queries import retention_schedule

    if not dry_run:
        click.echo(f"erased {apply_retention()} patient(s)")
        return
    due = retention_schedule(current_app.config["CRM"], utcnow(), horizon_days)
    for item in due:
        held = "  HELD: skipped while a legal hold lasts" if item.held else ""
        click.echo(
            f"patient {item.patient_id:<8} {item.basis:<9} ended {item.ended_at:%Y-%m-%d}"
            f"  erase on {item.due_at:%Y-%m-%d}{held}"
        )
    click.echo(f"{len(due)} patient(s) due; nothing changed (dry run)")
