"""The web app's built files (static/, made by `make web` from web/); served by app/api/web.py."""
