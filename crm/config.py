"""Configuration: defaults here, then an optional file, then CRM_* environment variables.

Every value is validated at start; a wrong or missing value stops the app with a message
that names the setting.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

DEV_SECRET = "dev-only-insecure-secret"  # noqa: S105 - refused when CRM_ENV=production


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message names it."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[str], Any]
    help: str


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"must be a positive integer, got {raw!r}")
    return value


def _days_or_never(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(f"must be 0 (never) or a number of days, got {raw!r}")
    return value


def _percent(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 100:
        raise ValueError(f"must be between 0 and 100, got {raw!r}")
    return value


def _documents_storage(raw: str) -> str:
    if raw not in {"local", "s3"}:
        raise ValueError("must be local or s3")
    return raw


def _master_keys(raw: str) -> dict[str, bytes]:
    from crm.documents.encryption import parse_master_keys

    return parse_master_keys(raw)


def _log_format(raw: str) -> str:
    if raw not in {"json", "text"}:
        raise ValueError("must be json or text")
    return raw


def _env_name(raw: str) -> str:
    if raw not in {"development", "test", "production"}:
        raise ValueError("must be one of development, test, production")
    return raw


def _quiet_hours(raw: str) -> str:
    from crm.messaging.delivery.quiet_hours import parse_window

    parse_window(raw)
    return raw


def _secure_cookies(raw: str) -> str:
    lowered = raw.strip().lower()
    if lowered == "auto":
        return "auto"
    return "true" if _bool(lowered) else "false"


def secure_cookies(values: Mapping[str, Any]) -> bool:
    """`auto`: Secure in production and wherever the base URL is https; off only for a
    plain-http development address such as make run's http://127.0.0.1:5000."""
    choice = str(values["SESSION_COOKIE_SECURE"])
    if choice == "auto":
        plain_http = str(values["PUBLIC_BASE_URL"]).startswith("http://")
        return values["ENV"] == "production" or not plain_http
    return choice == "true"


def _base_url(raw: str) -> str:
    """An absolute http(s) address without a trailing slash: links are built by appending
    paths to it, and a Twilio signature is checked against exactly what it yields."""
    value = raw.strip().rstrip("/")
    scheme, _, rest = value.partition("://")
    if scheme not in {"http", "https"} or not rest or any(ch.isspace() for ch in rest):
        raise ValueError(f"must be an http:// or https:// address, got {raw!r}")
    return value


def _e164_or_empty(raw: str) -> str:
    value = raw.strip()
    if value and not re.fullmatch(r"\+[1-9][0-9]{7,14}", value):
        raise ValueError(f"must be a number in E.164 (+ and digits) or empty, got {raw!r}")
    return value


def _rate_limit(raw: str) -> str:
    """A Flask-Limiter limit such as `120 per minute` or `10/second`."""
    from limits import parse_many

    try:
        parse_many(raw)
    except ValueError as exc:
        raise ValueError(f"must be a limit such as '120 per minute', got {raw!r}") from exc
    return raw.strip()


def _storage_url(raw: str) -> str:
    value = raw.strip()
    if value.partition("://")[0] not in {"memory", "redis", "rediss", "redis+sentinel"}:
        raise ValueError(f"must be memory:// or a redis:// address, got {raw!r}")
    return value


def _smtp_security(raw: str) -> str:
    if raw not in {"none", "starttls", "tls"}:
        raise ValueError("must be one of none, starttls, tls")
    return raw


SETTINGS: tuple[Setting, ...] = (
    Setting("ENV", "development", _env_name, "development, test or production"),
    Setting(
        "SECRET_KEY", DEV_SECRET, str, "signs patient links and sessions; required in production"
    ),
    Setting(
        "DATABASE_URL",
        "sqlite:///" + str(Path("var/crm.sqlite3").resolve()),
        str,
        "SQLAlchemy URL; PostgreSQL in production (postgresql+psycopg://...)",
    ),
    Setting("CATALOGUE_FILE", "config/procedures.toml", str, "procedure catalogue data file"),
    Setting("MAX_CONTENT_LENGTH", 1_048_576, _positive_int, "largest JSON request body, bytes"),
    Setting(
        "IDEMPOTENCY_TTL_HOURS", 24, _positive_int, "how long an Idempotency-Key is remembered"
    ),
    Setting("PUBLIC_BASE_URL", "http://127.0.0.1:5000", _base_url, "public URL of this service"),
    Setting("LOG_LEVEL", "INFO", str, "logging level"),
    Setting(
        "METRICS_TOKEN",
        "",
        str,
        "bearer token a Prometheus scraper sends to /metrics; empty: open (keep it internal)",
    ),
    Setting(
        "LOG_FORMAT",
        "json",
        _log_format,
        "json (one object a line with the request id, route, actor, status, duration) or text",
    ),
    Setting("DOCUMENTS_DIR", "var/documents", str, "where uploaded documents are stored"),
    Setting("DOCUMENT_MAX_MB_MRI", 1024, _positive_int, "largest MRI study upload, MB"),
    Setting("DOCUMENT_MAX_MB_OTHER", 25, _positive_int, "largest other document, MB"),
    Setting("ZIP_MAX_ENTRIES", 5000, _positive_int, "files allowed in an MRI study ZIP"),
    Setting("ZIP_MAX_UNPACKED_MB", 4096, _positive_int, "largest unpacked size of a ZIP, MB"),
    Setting("ZIP_MAX_RATIO", 100, _positive_int, "largest compression ratio of a ZIP entry"),
    Setting(
        "UPLOAD_EXPIRY_HOURS",
        24,
        _positive_int,
        "a resumable upload not added to for this long is abandoned (its part swept)",
    ),
    Setting(
        "DOCUMENT_ORPHAN_GRACE_HOURS",
        6,
        _positive_int,
        "a stored file no document references is removed once this old",
    ),
    Setting(
        "DOCUMENTS_STORAGE",
        "local",
        _documents_storage,
        "where documents are stored: local (CRM_DOCUMENTS_DIR) or s3 (CRM_S3_BUCKET)",
    ),
    Setting(
        "DOCUMENTS_MASTER_KEYS",
        {},
        _master_keys,
        "master keys wrapping each document's data key: id:base64-of-32-bytes, comma "
        "separated; required in production (development derives one from the secret)",
    ),
    Setting(
        "DOCUMENTS_ACTIVE_KEY_ID",
        "",
        str,
        "the master key new documents (and `flask crm documents rewrap`) use; empty: the first",
    ),
    Setting("S3_BUCKET", "", str, "the bucket documents are stored in when storage is s3"),
    Setting(
        "S3_ENDPOINT_URL",
        "",
        str,
        "an S3-compatible store's URL (MinIO, Ceph); empty: AWS. Credentials: the AWS chain",
    ),
    Setting("S3_REGION", "", str, "the bucket's region; empty: the AWS configuration's"),
    Setting("REVIEW_SLA_HOURS", 48, _positive_int, "hours a specialist has to review an MRI"),
    Setting(
        "FIRST_RESPONSE_SLA_HOURS",
        24,
        _positive_int,
        "hours a coordinator has to take a new enquiry out of `enquiry`",
    ),
    Setting(
        "PLAN_ANSWER_SLA_DAYS", 14, _positive_int, "days a patient has to answer an offered plan"
    ),
    Setting(
        "ATTRIBUTION_WINDOW_DAYS",
        90,
        _positive_int,
        "the first agency with a complete referral of a patient owns the patient this many days",
    ),
    Setting(
        "DUPLICATE_NAME_THRESHOLD",
        90,
        _percent,
        "name similarity (rapidfuzz token_sort_ratio, 0-100) that with the same date of birth"
        " makes a likely duplicate",
    ),
    Setting(
        "COMMISSION_PAYABLE_AFTER_DAYS",
        30,
        _positive_int,
        "days after discharge an accrued commission becomes payable (or at completion)",
    ),
    Setting("PATIENT_LINK_DAYS", 180, _positive_int, "how long a patient's private link lives"),
    Setting("PORTAL_RATE_PER_MINUTE", 30, _positive_int, "patient page requests per IP a minute"),
    Setting(
        "RATE_LIMIT_STORAGE_URL",
        "memory://",
        _storage_url,
        "where request counts live: redis://host:6379/0 (shared by every worker and "
        "instance; required in production) or memory:// (one worker's own, development)",
    ),
    Setting(
        "RATE_LIMIT_PER_KEY",
        "120 per minute",
        _rate_limit,
        "API requests per API key or staff token (per address without one)",
    ),
    Setting(
        "RATE_LIMIT_PER_AGENCY",
        "600 per minute",
        _rate_limit,
        "API requests per agency, over all its keys together",
    ),
    Setting(
        "CONVERSATION_MESSAGES_PER_HOUR",
        10,
        _positive_int,
        "messages a patient may write on the private page in an hour (per referral)",
    ),
    Setting(
        "WEBHOOKS_ALLOW_LOCALHOST",
        False,
        _bool,
        "let webhook endpoints be plain http to localhost (development and tests only)",
    ),
    Setting("WEBHOOK_TIMEOUT_SECONDS", 10, _positive_int, "time a receiver has to answer"),
    Setting(
        "WEBHOOK_RETRY_HOURS",
        72,
        _positive_int,
        "how long a failing delivery is retried (exponential backoff with jitter)",
    ),
    Setting(
        "WEBHOOK_DISABLE_AFTER_FAILURES",
        20,
        _positive_int,
        "failed attempts in a row after which an endpoint is disabled and the agency told",
    ),
    Setting(
        "WEBHOOK_BATCH_SIZE", 50, _positive_int, "deliveries a webhook dispatcher claims at once"
    ),
    Setting(
        "WEBHOOK_CONCURRENCY",
        8,
        _positive_int,
        "deliveries in flight at once per dispatcher (a slow receiver holds one slot)",
    ),
    Setting(
        "WEBHOOK_SECRET_OVERLAP_HOURS",
        24,
        _positive_int,
        "after a rotation, how long the old webhook secret still signs beside the new one",
    ),
    Setting(
        "API_KEY_ROTATION_OVERLAP_HOURS",
        24,
        _positive_int,
        "after a rotation, how long the old API key still works beside the new one",
    ),
    Setting("HOSPITAL_NAME", "Istanbul Spine Centre", str, "name used in messages"),
    Setting("HOSPITAL_PHONE", "+90 212 000 00 00", str, "contact line in HELP replies"),
    Setting(
        "HOSPITAL_ADDRESS",
        "Demo Caddesi 1, 34000 Şişli, İstanbul, Türkiye",
        str,
        "the hospital's address, on every patient page",
    ),
    Setting(
        "HOSPITAL_ACCREDITATION",
        "Joint Commission International (JCI)",
        str,
        "accreditation named on every patient page (a proper name, shown as written)",
    ),
    Setting(
        "HOSPITAL_EMERGENCY_PHONE",
        "+90 212 000 00 99",
        str,
        "day-and-night line on every patient page and in urgent check-in answers",
    ),
    Setting("COORDINATOR_EMAIL", "coordinators@hospital.example", str, "shared coordinator inbox"),
    Setting("NUDGE_RULES_FILE", "config/nudge_rules.toml", str, "nudge rules data file"),
    Setting("QUIET_HOURS", "21:00-08:30", _quiet_hours, "no SMS in this local window"),
    Setting("SMS_CAP_AGENCY_DAILY", 500, _positive_int, "SMS per agency per day"),
    Setting("SMS_CAP_GLOBAL_HOURLY", 2000, _positive_int, "SMS per hour, all agencies"),
    Setting("DISPATCH_BATCH_SIZE", 20, _positive_int, "messages a dispatcher claims at once"),
    Setting("DISPATCH_MAX_ATTEMPTS", 6, _positive_int, "tries before a message fails"),
    Setting("DISPATCH_STALE_SECONDS", 120, _positive_int, "a 'sending' row older is reconciled"),
    Setting("OUTBOX_FILE_DIR", "var/outbox", str, "where SMS/email go with no provider set"),
    Setting("TWILIO_ACCOUNT_SID", "", str, "Twilio account; empty: SMS go to a file"),
    Setting("TWILIO_AUTH_TOKEN", "", str, "Twilio auth token (also verifies webhooks)"),
    Setting("TWILIO_MESSAGING_SERVICE_SID", "", str, "Messaging Service SID (or a From number)"),
    Setting("TWILIO_FROM_NUMBER", "", str, "From number in E.164"),
    Setting(
        "TWILIO_WHATSAPP_FROM",
        "",
        _e164_or_empty,
        "WhatsApp sender in E.164 (sent as whatsapp:+...); empty: the Messaging Service",
    ),
    Setting(
        "WHATSAPP_TEMPLATES_FILE",
        "config/whatsapp_templates.toml",
        str,
        "approved WhatsApp templates (Content SIDs) per message kind and language",
    ),
    Setting("TWILIO_BASE_URL", "", str, "API base URL override (tests: the fake server)"),
    Setting("TWILIO_TIMEOUT_SECONDS", 10, _positive_int, "HTTP timeout for Twilio calls"),
    Setting("SMTP_HOST", "", str, "SMTP server; empty: email goes to a file"),
    Setting("SMTP_PORT", 587, _positive_int, "SMTP port"),
    Setting("SMTP_SECURITY", "starttls", _smtp_security, "none, starttls or tls"),
    Setting("SMTP_USERNAME", "", str, "SMTP login"),
    Setting("SMTP_PASSWORD", "", str, "SMTP password"),
    Setting("SMTP_TIMEOUT_SECONDS", 10, _positive_int, "SMTP timeout"),
    Setting("EMAIL_FROM", "care@hospital.example", str, "From address of our email"),
    Setting("SQL_ECHO", False, _bool, "log every SQL statement (development only)"),
    Setting(
        "SESSION_COOKIE_SECURE",
        "auto",
        _secure_cookies,
        "console cookie only over https: true, false or auto (off for a http:// base URL)",
    ),
    Setting("SESSION_HOURS", 12, _positive_int, "a console sign-in lasts at most this long"),
    Setting(
        "SIGN_IN_MAX_FAILURES",
        5,
        _positive_int,
        "failed sign-ins per account before a lockout (per address: four times as many)",
    ),
    Setting(
        "SIGN_IN_LOCKOUT_SECONDS",
        60,
        _positive_int,
        "first lockout; each further failure doubles it, up to an hour",
    ),
    Setting("PASSWORD_LINK_HOURS", 24, _positive_int, "how long a set/reset password link works"),
    Setting(
        "RETENTION_DAYS_AFTER_COMPLETED",
        3650,
        _days_or_never,
        "a patient whose referrals all ended is pseudonymised this many days after the last"
        " completed one (0: never)",
    ),
    Setting(
        "RETENTION_DAYS_AFTER_LOST",
        730,
        _days_or_never,
        "... and this many days after the last lost one when none was completed (0: never)",
    ),
)

SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


def _from_file(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"CRM_CONFIG_FILE={path}: no such file")
    try:
        with file.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(SETTINGS_BY_NAME))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, raw in data.items():
        try:
            values[name] = SETTINGS_BY_NAME[name].parse(_file_value_as_text(raw))
        except ValueError as exc:
            raise ConfigError(f"{path}: {name}: {exc}") from exc
    return values


def _file_value_as_text(raw: Any) -> str:
    """A TOML value in the form an environment variable would carry it, parsed the same way."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | str):
        return str(raw)
    raise ValueError(f"expected a string, integer or boolean, not {type(raw).__name__}")


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(f"CRM_{setting.name}")
        if raw is None:
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"CRM_{setting.name}: {exc}") from exc
    return values


def load_config(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    values = {setting.name: setting.default for setting in SETTINGS}
    if environ.get("CRM_CONFIG_FILE"):
        values.update(_from_file(environ["CRM_CONFIG_FILE"]))
    values.update(_from_env(environ))
    values.update(overrides or {})
    validate(values)
    return values


def validate(values: Mapping[str, Any]) -> None:
    if values["ENV"] == "production":
        if not values["SECRET_KEY"] or values["SECRET_KEY"] == DEV_SECRET:
            raise ConfigError("CRM_SECRET_KEY: must be set to a random secret in production")
        if len(values["SECRET_KEY"]) < 32:
            raise ConfigError("CRM_SECRET_KEY: must be at least 32 characters in production")
        if values["DATABASE_URL"].startswith("sqlite"):
            raise ConfigError("CRM_DATABASE_URL: production needs PostgreSQL, not SQLite")
        if not secure_cookies(values):
            raise ConfigError("CRM_SESSION_COOKIE_SECURE: production cookies must be Secure")
        if values["RATE_LIMIT_STORAGE_URL"].startswith("memory"):
            raise ConfigError(
                "CRM_RATE_LIMIT_STORAGE_URL: production needs Redis (redis://...); "
                "memory:// counts per worker"
            )
    _validate_documents(values)
    if values["TWILIO_ACCOUNT_SID"]:
        if not values["TWILIO_AUTH_TOKEN"]:
            raise ConfigError("CRM_TWILIO_AUTH_TOKEN: required when CRM_TWILIO_ACCOUNT_SID is set")
        if not (values["TWILIO_MESSAGING_SERVICE_SID"] or values["TWILIO_FROM_NUMBER"]):
            raise ConfigError(
                "CRM_TWILIO_MESSAGING_SERVICE_SID or CRM_TWILIO_FROM_NUMBER: one is required"
            )
    try:
        _quiet_hours(str(values["QUIET_HOURS"]))
    except ValueError as exc:
        raise ConfigError(f"CRM_QUIET_HOURS: {exc}") from exc
    if "://" not in values["DATABASE_URL"]:
        raise ConfigError("CRM_DATABASE_URL: not a database URL")


def flask_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Map our settings onto the names Flask and its extensions read."""
    # pool_pre_ping: a connection the server dropped (a restart, a failover,
    # pg_terminate_backend, an idle timeout in a proxy) is noticed at checkout and replaced,
    # so the caller never sees it; one `SELECT 1` round trip per checkout, which is cheap
    # beside a request. pool_recycle also retires connections before idle timeouts bite.
    # hide_parameters: a failed statement's exception (logged with its traceback) names the
    # SQL but not the values bound to it, which are patients' names, phones and notes.
    engine_options: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_recycle": 1800,
        "hide_parameters": True,
    }
    if values["DATABASE_URL"].startswith("sqlite"):
        engine_options = {"connect_args": {"timeout": 30}, "hide_parameters": True}
    return {
        "CRM": dict(values),
        "SECRET_KEY": values["SECRET_KEY"],
        "SQLALCHEMY_DATABASE_URI": values["DATABASE_URL"],
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        "SQLALCHEMY_ECHO": values["SQL_ECHO"],
        "MAX_CONTENT_LENGTH": values["MAX_CONTENT_LENGTH"],
        # The console's cookie (Flask's signed session): see README "Console sign-in".
        "SESSION_COOKIE_NAME": "crm_console",
        "SESSION_COOKIE_SECURE": secure_cookies(values),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=values["SESSION_HOURS"]),
        # CSRF is checked by the console blueprint alone (the API takes bearer tokens).
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": values["SESSION_HOURS"] * 3600,
        "API_TITLE": "Referral CRM",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/api/v1/docs-assets/",
    }


def _validate_documents(values: Mapping[str, Any]) -> None:
    keys, active = values["DOCUMENTS_MASTER_KEYS"], values["DOCUMENTS_ACTIVE_KEY_ID"]
    if values["ENV"] == "production" and not keys:
        raise ConfigError(
            "CRM_DOCUMENTS_MASTER_KEYS: production needs a master key for documents at rest"
        )
    if active and keys and active not in keys:
        raise ConfigError(
            f"CRM_DOCUMENTS_ACTIVE_KEY_ID: {active!r} is not in CRM_DOCUMENTS_MASTER_KEYS"
        )
    if values["DOCUMENTS_STORAGE"] == "s3" and not values["S3_BUCKET"]:
        raise ConfigError("CRM_S3_BUCKET: required when CRM_DOCUMENTS_STORAGE=s3")
