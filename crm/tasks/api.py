from flask_smorest import Blueprint

blp = Blueprint("tasks", __name__, description="Coordinator tasks")
