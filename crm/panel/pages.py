"""Every agency panel page module, imported once so its routes join the `panel`
blueprint (see crm/panel/views.py)."""

from crm.panel import (
    views,  # noqa: F401
    webhooks,  # noqa: F401
)
