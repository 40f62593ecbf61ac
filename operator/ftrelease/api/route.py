"""A route: where live traffic goes, as the planner decides it and the routers realise it; and
what each traffic provider can do with one (its capabilities), which planning and validation ask
instead of comparing provider names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    """Percent of live traffic per revision (summing to 100, in backend order), and an optional
    mirror of requests to one revision."""

    weights: tuple[tuple[str, int], ...]
    mirror_to: str | None = None
    mirror_percent: int = 0

    @staticmethod
    def only(revision: str) -> Route:
        return Route(weights=((revision, 100),))

    @staticmethod
    def split(stable: str, candidate: str, weight: int, mirror: int = 0) -> Route:
        return Route(
            weights=((stable, 100 - weight), (candidate, weight)),
            mirror_to=candidate if mirror else None,
            mirror_percent=mirror,
        )

    def weight_of(self, revision: str) -> int:
        return dict(self.weights).get(revision, 0)

    @property
    def revisions(self) -> set[str]:
        found = {r for r, _ in self.weights}
        return found | ({self.mirror_to} if self.mirror_to else set())


@dataclass(frozen=True)
class Capabilities:
    """What a traffic provider can do: copy requests to the candidate (mirror stages), and
    whether its split follows the revisions' replica counts (one Service over every revision's
    pods) rather than weights it sets itself."""

    mirror: bool
    split_follows_replicas: bool


# By spec.traffic.provider; each router carries its own entry (traffic/).
CAPABILITIES: dict[str, Capabilities] = {
    "gateway-api": Capabilities(mirror=True, split_follows_replicas=False),
    "replicas": Capabilities(mirror=False, split_follows_replicas=True),
}
