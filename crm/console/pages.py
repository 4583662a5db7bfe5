"""Every console page module, imported once so its routes join the `console` blueprint.

A new page is a module here: `@console.get(...)` + `@staff_page(*roles)` + a template that
extends `console/base.html`. The menu (`views.NAV`) links an endpoint once it exists.
"""

from crm.console import (  # noqa: F401
    admin,
    admin_agencies,
    admin_messages,
    admin_staff,
    agency_thread,
    audit,
    board,
    clinical,
    commission,
    conversation,
    duplicates,
    outbox,
    privacy,
    referral,
    referral_actions,
    reports,
    search,
    today,
    tokens,
)
