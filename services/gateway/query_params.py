"""The one rule for query parameters: a request that names a parameter its route does not declare
is a 422 naming it and the allowed ones. Without it FastAPI ignores unknown names, so a typo
(``?stauts=running``, ``?purgee=true``) silently changes what a caller gets: the query
counterpart of the bodies' ``extra="forbid"``.

An ASGI middleware (``create_app`` adds it), so that a request without a query, nearly every
one, costs one test of ``scope["query_string"]`` and nothing else; a request with one is matched
to its route as the router will match it, before the endpoint runs. Routes left out of the
OpenAPI document (the /ui page shells, whose scripts read the query in the browser) are not part
of the contract and keep any query.
"""

from __future__ import annotations

from fastapi.dependencies.utils import get_flat_dependant
from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.errors import error_response

__all__ = ["UnknownQueryParams", "declared_query_params", "unknown_query_message"]


def declared_query_params(route: APIRoute) -> frozenset[str]:
    """The query names ``route`` declares, its dependencies' included."""
    return frozenset(p.alias for p in get_flat_dependant(route.dependant).query_params)


def unknown_query_message(route: APIRoute, method: str, names: list[str]) -> tuple[str, str] | None:
    """(the first undeclared name, the error message), or None when every name is declared."""
    allowed = declared_query_params(route)
    for name in names:
        if name not in allowed:
            listed = ", ".join(sorted(allowed)) or "none"
            return (
                name,
                f"{name}: not a query parameter of {method} {route.path}; allowed: {listed}",
            )
    return None


class UnknownQueryParams:
    """ASGI middleware: the 422 for an undeclared query parameter of a documented route."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes  # the app's router's list: routes included later are seen too

    def _route(self, scope: Scope) -> BaseRoute | None:
        # The first full match, as Starlette's router picks it.
        for route in self.routes:
            match, _child = route.matches(scope)
            if match == Match.FULL:
                return route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        route = self._route(scope)
        if isinstance(route, APIRoute) and route.include_in_schema:
            names = list(QueryParams(scope["query_string"]).keys())
            found = unknown_query_message(route, scope["method"], names)
            if found is not None:
                name, message = found
                await error_response(422, "invalid_input", message, name)(scope, receive, send)
                return
        await self.app(scope, receive, send)
