"""Staff and roles: managers read; admins invite a user (an emailed link to set their
password), change a role, deactivate (their sessions end, their tokens are revoked) and
reactivate. The rules (not yourself, never the last admin) are in crm.auth.staff."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from crm.auth import staff as accounts
from crm.auth.guards import current_actor, role_allows
from crm.auth.models import STAFF_ROLES
from crm.console.actions import attempt
from crm.console.auth import current_user, staff_page
from crm.console.views import console
from crm.staff.queries import staff_with_last_sign_in

PAGE = "console.admin_staff"


@console.get("/admin/staff")
@staff_page("manager")
def admin_staff():
    return render_template(
        "console/admin/staff.html",
        rows=staff_with_last_sign_in(),
        roles=STAFF_ROLES,
        can_change=role_allows(current_actor(), {"admin"}),
        me=current_user(),
    )


@console.post("/admin/staff")
@staff_page("admin")
def admin_invite_staff():
    form = request.form
    email = form.get("email", "").strip()[:320]
    attempt(
        lambda: accounts.invite_staff_user(
            email, form.get("name", "")[:300], form.get("role", "")[:20], current_actor()
        ),
        done=f"{email} is invited: a link to set their password is on its way by email.",
    )
    return redirect(url_for(PAGE), 303)


@console.post("/admin/staff/<int:user_id>/role")
@staff_page("admin")
def admin_change_role(user_id: int):
    user = accounts.staff_user(user_id)
    role = request.form.get("role", "")[:20]
    attempt(
        lambda: accounts.change_role(user, role, current_actor()),
        done=f"{user.name} is now {role}.",
    )
    return redirect(url_for(PAGE), 303)


@console.post("/admin/staff/<int:user_id>/deactivate")
@staff_page("admin")
def admin_deactivate_staff(user_id: int):
    user = accounts.staff_user(user_id)
    attempt(
        lambda: accounts.deactivate(user, current_actor()),
        done=f"{user.name} is deactivated: signed out everywhere, API tokens revoked.",
    )
    return redirect(url_for(PAGE), 303)


@console.post("/admin/staff/<int:user_id>/reactivate")
@staff_page("admin")
def admin_reactivate_staff(user_id: int):
    user = accounts.staff_user(user_id)
    attempt(
        lambda: accounts.reactivate(user, current_actor()),
        done=f"{user.name} may sign in again (old API tokens stay revoked).",
    )
    return redirect(url_for(PAGE), 303)
