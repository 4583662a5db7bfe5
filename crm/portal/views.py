"""The patient's private link: server-rendered pages, no login."""

from flask import Blueprint

portal = Blueprint("portal", __name__, template_folder="templates")
