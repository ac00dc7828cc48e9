"""stylecraft studio: a local web page and JSON API on top of :mod:`stylecraft.api`.

``stylecraft serve`` runs it. ``config`` holds its settings (no web imports, so the CLI reads its defaults
cheaply); ``jobs`` the SQLite store of uploads and jobs and the background worker; ``app`` the FastAPI
application; ``static/`` the page (plain HTML, CSS and JavaScript, no build step). Nothing in the core
imports this package.
"""
