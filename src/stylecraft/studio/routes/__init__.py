"""The studio's API, one router per area: ``info`` (version, limits, models), ``uploads``, ``styles`` (the
built-in styles and previews in them) and ``jobs``."""
