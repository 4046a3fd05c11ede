"""Logs: the access log (``access``, ``formats``, ``writer``: loaded only when it is on) and
the process's own log records (``structured``: JSON or text)."""
