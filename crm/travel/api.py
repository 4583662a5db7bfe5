from flask_smorest import Blueprint

blp = Blueprint("travel", __name__, description="Travel: itinerary, flights, hotel, visa letter")
