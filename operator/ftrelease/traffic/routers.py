"""The traffic providers by `spec.traffic.provider`, like Flagger's router factory (one file per
provider; the Router protocol is in router.py)."""

from __future__ import annotations

from .gateway_api import GatewayApiRouter
from .replicas import ReplicasRouter
from .router import Router

ROUTERS: dict[str, Router] = {"gateway-api": GatewayApiRouter(), "replicas": ReplicasRouter()}
