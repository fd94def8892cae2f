"""The household's web page: login, sessions, CSRF and the login rate limit
(:mod:`gateway.web.auth`). The pages and their server are not built yet."""
