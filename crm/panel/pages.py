"""Every agency panel page module, imported once so its routes join the `panel`
blueprint (see crm/panel/views.py)."""

from crm.panel import (  # noqa: F401
    keys,
    messages,
    referrals,
    statements,
    submit,
    team,
    uploads,
    views,
    webhooks,
)
