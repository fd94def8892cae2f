"""The household's web page, served by the gateway when ``web:`` is in the config.

:mod:`gateway.web.auth` holds the password hash, sessions, CSRF tokens and the login
limit; :mod:`gateway.web.server` the pages (Now, History, Health) and their server
thread. Actions become core events on the core thread's queue (docs/web.md).
"""
