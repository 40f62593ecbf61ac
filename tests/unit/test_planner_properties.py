"""Invariants of the planner under random sequences of events: clocks, readiness, bundle
changes, commands, pauses and what analysis measures."""

from __future__ import annotations

from datetime import timedelta

from ftrelease.rollout.commands import ABORT, APPROVE, PAUSE, RESUME, RETRY
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.rollout_world import Counted, World, spec_with, with_bundle_version

BASE = spec_with(**{"serving.replicas": 4})
BUNDLES = [BASE, *(with_bundle_version(BASE, v) for v in ("v2", "v3", "v4"))]

DOWN = Counted(0.01)
DOWN.error = "prometheus unreachable"
TRAFFIC = {
    "healthy": Counted(0.01, rps=100),
    "none": Counted(None),
    "broken": Counted(0.5, rps=100),
    "down": DOWN,
}

actions = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from([1, 20, 61, 700])),
    st.tuples(st.just("bundle"), st.integers(0, len(BUNDLES) - 1)),
    st.tuples(st.just("unready"), st.booleans()),
    st.tuples(st.just("command"), st.sampled_from([ABORT, APPROVE, RETRY, PAUSE, RESUME])),
    st.tuples(st.just("pause"), st.booleans()),
    st.tuples(st.just("traffic"), st.sampled_from(["healthy", "none", "broken", "down"])),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(actions, min_size=1, max_size=40))
def test_planner_invariants(steps):
    world = World(BUNDLES[0])
    measure = TRAFFIC["healthy"]
    for action, value in steps:
        commands = None
        if action == "advance":
            world.now += timedelta(seconds=value)
        elif action == "bundle":
            world.spec = BUNDLES[value].model_copy(update={"paused": world.spec.paused})
        elif action == "unready":
            # The candidate's pods (if any) stop or start being ready.
            candidate = world.status.candidate_revision
            if candidate and value:
                world.unready.add(candidate)
            else:
                world.unready.clear()
        elif action == "command":
            commands = {value: ""}
        elif action == "pause":
            world.spec = world.spec.model_copy(update={"paused": value})
        else:
            measure = TRAFFIC[value]
        observed = world.observe()
        before_phase = world.status.phase
        before_stage = world.status.stage
        held = world.status.paused_by is not None and RESUME not in (commands or {})
        before_candidate = world.status.candidate_revision
        decision = world.step(commands=commands, measure=measure)
        route = decision.route
        stable = decision.status.stable_revision

        if route is not None:
            # Weights always sum to 100, each within 0..100.
            assert sum(w for _, w in route.weights) == 100
            assert all(0 <= w <= 100 for _, w in route.weights)
            # Traffic (weighted or mirrored) never goes to a revision that is not Available,
            # except the stable one, which is all there is to fall back on.
            for revision in route.revisions:
                if revision != stable and (
                    route.weight_of(revision) or route.mirror_to == revision
                ):
                    assert observed.ready(revision, 1), (revision, route, observed)
        # A rollback is always one route write: all traffic to stable, in this one decision.
        if decision.status.phase == "RolledBack" and before_phase in (
            "Shadow",
            "Progressing",
            "Pending",
            "Paused",
        ):
            assert route is not None and route.weights == ((stable, 100),)
            assert route.mirror_to is None
        # Paused by command, no stage moves on (a rollback still may).
        after_stage = decision.status.stage
        same = decision.status.candidate_revision == before_candidate
        if held and same and before_stage and after_stage:
            assert after_stage.index == before_stage.index
            assert after_stage.started_at == before_stage.started_at
        # The stable revision is never deleted, nor the candidate.
        assert stable not in decision.delete
        assert decision.status.candidate_revision not in decision.delete
        # Status stays what the CRD accepts.
        assert len(decision.status.retired) <= world.spec.strategy.revision_history_limit
