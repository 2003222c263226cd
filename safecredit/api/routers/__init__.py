"""The /v1 routes, one module per resource (the way yente splits its API); `app.py` assembles them."""
