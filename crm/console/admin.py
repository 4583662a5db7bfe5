"""The admin area: an index of the admin pages the viewer's role may open, and the
procedure catalogue (read-only: it is data loaded from config/procedures.toml).

The other admin pages live beside this module: admin_agencies.py, admin_staff.py and
admin_messages.py (nudge rules and message templates).
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app, render_template

from crm.auth.guards import current_actor, role_allows
from crm.catalogue.queries import active_procedures
from crm.console.auth import staff_page
from crm.console.views import console

# (endpoint, title, what it is); who may open each is the page's own `staff_page` rule.
PAGES = (
    ("console.admin_agencies", "Agencies and API keys", "Partner agencies, their API keys."),
    ("console.admin_staff", "Staff and roles", "Who may sign in, with which role."),
    ("console.admin_rules", "Nudge rules and message templates", "What goes out by itself."),
    ("console.admin_catalogue", "Procedure catalogue", "Each procedure's facts."),
    ("console.outbox", "The outbox", "Failed, held and suppressed messages; retry."),
)


def pages_for_viewer() -> list[tuple[str, str, str]]:
    actor = current_actor()
    views = current_app.view_functions
    return [
        page
        for page in PAGES
        if page[0] in views and role_allows(actor, getattr(views[page[0]], "console_roles", ()))
    ]


@console.get("/admin")
@staff_page()
def admin():
    return render_template("console/admin/index.html", pages=pages_for_viewer())


@console.get("/admin/catalogue")
@staff_page()
def admin_catalogue():
    """Any staff: the same facts the API's /procedures gives every caller (no prices)."""
    return render_template(
        "console/admin/catalogue.html",
        procedures=active_procedures(),
        source=_shown_path(current_app.config["CRM"]["CATALOGUE_FILE"]),
    )


def _shown_path(path: str) -> str:
    """`config/procedures.toml`: the file and its folder, not the server's whole path."""
    found = Path(path)
    return f"{found.parent.name}/{found.name}" if found.parent.name else found.name
