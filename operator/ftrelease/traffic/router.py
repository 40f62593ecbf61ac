"""The Router protocol: a traffic provider turns a planned Route into the one object that realises
it and reads the Route back from that object, and says what it can do (its Capabilities). Pure:
the operator does the I/O."""

from __future__ import annotations

from typing import Any, Protocol

from ftrelease.api.bundle import RouteMatch
from ftrelease.api.ownership import ReleaseRef
from ftrelease.api.route import Capabilities, Route
from ftrelease.api.spec import FineTuneReleaseSpec


class Router(Protocol):
    api_version: str
    kind: str
    capabilities: Capabilities  # what planning and validation may ask of this provider

    def route_object(
        self, ref: ReleaseRef, spec: FineTuneReleaseSpec, route: Route, matches: list[RouteMatch]
    ) -> dict[str, Any]:
        """The one object that carries the route: writing it is the route write."""

    def read_route(self, ref: ReleaseRef, obj: dict[str, Any]) -> Route | None:
        """The Route the object carries now."""

    def route_problem(self, obj: dict[str, Any]) -> str | None:
        """Why the provider does not carry out the route as written, where it says so (a
        gateway's status on an HTTPRoute); None when it does or does not say."""
