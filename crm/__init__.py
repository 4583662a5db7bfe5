"""The referral CRM: create_app() builds the Flask application. No queries, no I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask

from crm import features
from crm.config import flask_settings, load_config
from crm.core import logs, metrics
from crm.documents import upload, wire
from crm.extensions import ProblemApi, RateLimitDocs


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    settings = load_config(overrides=overrides)
    app = Flask(__name__)
    upload.install(app)  # file parts stream to disk; leftovers removed per request
    wire.install(app)  # large bodies read from gunicorn's socket in large reads
    app.config.from_mapping(flask_settings(settings))
    app.json.sort_keys = False  # type: ignore[attr-defined]
    logs.configure(settings["LOG_LEVEL"], settings["LOG_FORMAT"])
    api = _init_extensions(app)
    _register_blueprints(app, api)
    _register_cli(app)
    features.wire(app)
    return app


def _init_extensions(app: Flask) -> ProblemApi:
    from crm import models  # noqa: F401  (every model registered before migrations look)
    from crm.auth import rate_limits
    from crm.core.db import enforce_sqlite_foreign_keys
    from crm.core.edge import IdConverter, id_parameter_schema
    from crm.core.errors import register_error_handlers
    from crm.core.http import register_docs_assets, register_request_lifecycle
    from crm.core.i18n import TRANSLATIONS_DIR, page_language
    from crm.extensions import babel, db, migrate

    db.init_app(app)
    babel.init_app(
        app, locale_selector=page_language, default_translation_directories=str(TRANSLATIONS_DIR)
    )
    with app.app_context():
        enforce_sqlite_foreign_keys(db.engine)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"))
    app.url_map.converters["int"] = IdConverter  # before any route: ids are 1..2^31-1
    api = ProblemApi(
        app, spec_kwargs={"extra_plugins": [RateLimitDocs()]}
    )  # one per app: its OpenAPI document belongs to this app alone
    api.register_converter(IdConverter, id_parameter_schema)
    api.spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "Agency API key or staff token"},
    )
    register_error_handlers(app)
    logs.register(app)  # before the lifecycle: its line is written after the commit
    metrics.register(app)
    register_request_lifecycle(app)
    register_docs_assets(app)
    _document_webhooks(api)
    rate_limits.install(app)  # after the request id: a refusal carries one too
    return api


def _document_webhooks(api: ProblemApi) -> None:
    from crm.webhooks.docs import document

    document(api.spec)  # the event payloads and `x-webhooks`


def _register_blueprints(app: Flask, api: ProblemApi) -> None:
    from crm.agency_messages.api import blp as agency_messages_blp
    from crm.audit.api import blp as audit_blp
    from crm.auth.keys_api import blp as keys_blp
    from crm.catalogue.api import blp as catalogue_blp
    from crm.commission.api import blp as commission_blp
    from crm.console import pages  # noqa: F401  (every page joins the console blueprint)
    from crm.console.views import register as register_console
    from crm.core.health import health
    from crm.documents.api import blp as documents_blp
    from crm.documents.assets import assets as document_assets
    from crm.duplicates.api import blp as duplicates_blp
    from crm.fhir.api import blp as fhir_blp
    from crm.followup.api import blp as followup_blp
    from crm.merges.api import blp as merges_blp
    from crm.messaging.api import blp as messages_blp
    from crm.messaging.inbound.webhooks import webhooks
    from crm.messaging.template_api import blp as templates_blp
    from crm.nudges.api import blp as nudge_rules_blp
    from crm.panel import pages as panel_pages  # noqa: F401  (every page joins the panel)
    from crm.panel.resumable import panel_uploads
    from crm.panel.views import panel
    from crm.plans.api import blp as plans_blp
    from crm.portal import contact, conversation  # noqa: F401  (their routes join the portal)
    from crm.portal.api import blp as patient_links_blp
    from crm.portal.resumable import portal_uploads
    from crm.portal.unsubscribe import unsubscribe_pages
    from crm.portal.uploads import assets as portal_assets  # its routes join the portal
    from crm.portal.views import portal
    from crm.privacy.api import blp as privacy_blp
    from crm.referrals.api import blp as referrals_blp
    from crm.reports.api import blp as reports_blp
    from crm.reviews.api import blp as reviews_blp
    from crm.staff.api import blp as staff_blp
    from crm.tasks.api import blp as tasks_blp
    from crm.travel.api import blp as travel_blp
    from crm.webhooks.api import blp as webhooks_blp

    app.register_blueprint(health)
    app.register_blueprint(webhooks)
    api_blueprints = (
        referrals_blp,
        catalogue_blp,
        messages_blp,
        nudge_rules_blp,
        templates_blp,
        documents_blp,
        reviews_blp,
        plans_blp,
        travel_blp,
        followup_blp,
        tasks_blp,
        duplicates_blp,
        merges_blp,
        reports_blp,
        commission_blp,
        patient_links_blp,
        staff_blp,
        audit_blp,
        webhooks_blp,
        keys_blp,
        agency_messages_blp,
        fhir_blp,
        privacy_blp,
    )
    for blueprint in api_blueprints:
        api.register_blueprint(blueprint, url_prefix="/api/v1")
    app.register_blueprint(portal)
    app.register_blueprint(portal_assets)
    app.register_blueprint(document_assets)
    app.register_blueprint(portal_uploads)
    app.register_blueprint(unsubscribe_pages)
    register_console(app)
    app.register_blueprint(panel)
    app.register_blueprint(panel_uploads)
    _limit(app, api_blueprints)


def _limit(app: Flask, api_blueprints: tuple[Blueprint, ...]) -> None:
    """Rate limits by blueprint (crm/auth/rate_limits.py): the agency's allowance on every
    API blueprint, the patient pages per address; health, Twilio's webhooks and the
    unsubscribe link never."""
    from crm.auth import rate_limits
    from crm.core.health import health
    from crm.messaging.inbound.webhooks import webhooks
    from crm.portal.resumable import portal_uploads
    from crm.portal.unsubscribe import unsubscribe_pages
    from crm.portal.views import portal, rate_limited

    limiter = rate_limits.limiter_of(app)
    rate_limits.limit_agencies(limiter, api_blueprints)
    rate_limits.limit_portal(limiter, portal, rate_limited)
    rate_limits.limit_portal_uploads(limiter, portal_uploads)
    rate_limits.exempt(limiter, [health, webhooks, unsubscribe_pages, metrics.metrics])


def _register_cli(app: Flask) -> None:
    from crm.cli import crm_cli

    app.cli.add_command(crm_cli)
