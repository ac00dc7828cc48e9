"""stylecraft studio: a local web page and JSON API on top of :mod:`stylecraft.api`.

``stylecraft serve`` runs it. ``jobs`` holds the SQLite store of uploads and jobs and the background worker;
``app`` the FastAPI application; ``static/`` the page (plain HTML, CSS and JavaScript, no build step).
Nothing in the core imports this package.
"""

from .app import StudioConfig, create_app
from .jobs import JobStore, Worker

__all__ = ["JobStore", "StudioConfig", "Worker", "create_app"]
