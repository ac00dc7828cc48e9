"""The studio's API, one router per area: ``info`` (version, limits, models), ``uploads`` and ``jobs``."""
