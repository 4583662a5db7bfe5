"""The staff console: server-rendered pages (Jinja templates, plain CSS served by the app).

`crm.console.views` holds the shell (sign-in, sign-out, the second factor, passwords,
API tokens); `crm.console.auth.staff_page` is the decorator every other page uses.
"""
