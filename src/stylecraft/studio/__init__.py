"""stylecraft studio: a local web page and JSON API on top of :mod:`stylecraft.api` (the ``studio`` extra).

``stylecraft serve`` runs it. ``config`` holds its settings (no web imports, so the CLI reads its defaults
cheaply); ``store`` the SQLite store of uploads and jobs; ``worker`` the thread that runs them; ``app`` the
FastAPI application, assembled from ``security`` (who may send what), ``routes`` and ``events``; ``static/``
the page (plain HTML, CSS and JavaScript, no build step). Nothing in the core imports this package.
"""
