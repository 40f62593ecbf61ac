"""Replica planning: how many pods each revision the release keeps runs (candidate, stable,
retired), and which revisions' objects go. Pure; the planner calls it once per Decision."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from ftrelease.api.bundle import Bundle
from ftrelease.api.durations import parse_duration
from ftrelease.api.route import CAPABILITIES
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.strategy import Stage

from .types import IN_PROGRESS, Decision, Observed, RevisionPlan


def candidate_replicas(spec: FineTuneReleaseSpec, stage: Stage) -> int:
    share = stage.weight if stage.weight is not None else (stage.mirror or 0)
    return spec.serving.canary_pods(share)


def plan_revisions(
    spec: FineTuneReleaseSpec,
    observed: Observed,
    decision: Decision,
    now: datetime,
    bundle_of: Callable[[str], Bundle | None],
) -> None:
    """Replica counts for every revision the release keeps; deletions past the history. Sets
    the decision's revisions and deletions and trims its status' retired revisions."""
    status, full = decision.status, spec.serving.replicas
    follows_replicas = CAPABILITIES[spec.traffic.provider].split_follows_replicas
    stable, candidate = status.stable_revision, status.candidate_revision
    plans: dict[str, RevisionPlan] = {}
    candidate_count = 0
    if candidate and status.phase in IN_PROGRESS:
        stage = status.stage
        if stage is None:  # first release, or a rollback to a retained revision
            candidate_count = full
        else:
            stages = spec.stages
            candidate_count = candidate_replicas(spec, stages[min(stage.index, len(stages) - 1)])
        plans[candidate] = RevisionPlan(
            candidate, candidate_count, "candidate", bundle_of(candidate)
        )
    if status.rolling_back_to is not None:  # its objects as they are, scaled up to take over
        target = status.rolling_back_to.revision
        plans[target] = RevisionPlan(target, full, "stable", bundle_of(target))
    if stable is not None:
        stable_count = full
        if follows_replicas and candidate_count:
            # One Service over both revisions: the split is the replica ratio.
            stable_count = max(full - candidate_count, 0)
        plans[stable] = RevisionPlan(stable, stable_count, "stable", bundle_of(stable))

    keep = spec.strategy.revision_history_limit
    retired = [r for r in status.retired if r.revision not in plans]
    status.retired = retired[:keep]
    kept = spec.strategy.keep_previous_stable
    for entry in status.retired:
        found = observed.revisions.get(entry.revision)
        replicas = 0
        # Behind a shared Service (the split follows replicas, as with the replicas provider) a
        # warm pod would take live traffic: nothing is kept warm there.
        until = entry.since + timedelta(seconds=entry.scale_down_after_seconds)
        kept_until = entry.since + parse_duration(kept.duration)
        if follows_replicas or found is None:
            pass
        elif now < until:  # all its pods, for in-flight requests and an undo at full capacity
            replicas = found.replicas
            decision.requeue((until - now).total_seconds())
        elif entry.role == "stable" and now < kept_until:  # a few, for a quick rollback
            replicas = min(found.replicas, spec.kept_previous_pods)
            decision.requeue((kept_until - now).total_seconds())
        plans[entry.revision] = RevisionPlan(entry.revision, replicas, "retired")
    decision.revisions = list(plans.values())
    decision.delete = sorted(r for r in observed.revisions if r not in plans)
