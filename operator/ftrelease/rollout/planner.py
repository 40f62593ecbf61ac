"""The planner: one pure function from what is (spec, status, observed objects, commands,
analysis, now) to what should be (a Decision). No I/O; the operator applies the Decision.

Lifecycle (DESIGN.md §2): a new bundle is a candidate; it passes the eval gate, comes up beside
the stable revision, walks the stages (mirror, then weights), and is promoted by a route flip;
a failure, an abort or a bundle set back puts all traffic on stable in one route write.

All progress lives in status, so a restarted operator resumes exactly where it was: a stage's
clock is the time its route was first observed in place, and a route already in place is never
written again."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ftrelease.api.bundle import Bundle
from ftrelease.api.durations import parse_duration
from ftrelease.api.revision import revision_of
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import (
    Condition,
    FineTuneReleaseStatus,
    HistoryEntry,
    RetiredRevision,
    StageStatus,
)
from ftrelease.api.strategy import Stage
from ftrelease.api.verdict import NO_ANALYSIS, StageVerdict, inconclusive

from .types import (
    ABORT,
    APPROVE,
    COMMANDS,
    RESUME,
    RETRY,
    Decision,
    Event,
    Observed,
    RevisionPlan,
    Route,
)

IN_PROGRESS = ("Pending", "Shadow", "Progressing", "Paused")
HISTORY_LIMIT = 20  # entries kept in status.history


def bundle_summary(bundle: Bundle) -> dict[str, str]:
    """One short line per bundle part, for history and Events."""
    return {
        "baseModel": f"{bundle.base_model.name}@{bundle.base_model.revision[:12]}",
        "artifact": f"{bundle.artifact.type} {bundle.artifact.digest[:19]}",
        "dataset": f"{bundle.dataset.name}@{bundle.dataset.version}",
        "evals": f"{bundle.evals.suite}/{bundle.evals.version}",
        "modelName": bundle.routing.model_name,
    }


def candidate_replicas(spec: FineTuneReleaseSpec, stage: Stage) -> int:
    """auto: ceil(replicas x share / 100), at least 1, so a 1% canary holds one pod rather than
    a full set of GPUs; a fixed count is used as given until the full stage."""
    full = spec.serving.replicas
    share = stage.weight if stage.weight is not None else (stage.mirror or 0)
    if share >= 100:
        return full
    if spec.serving.canary_replicas != "auto":
        return min(int(spec.serving.canary_replicas), full)
    return max(1, math.ceil(full * share / 100))


def gate_problem(spec: FineTuneReleaseSpec, stable_bundle: dict | None) -> str | None:
    """Why the bundle's offline evals keep it out of production, or None."""
    scores = spec.bundle.evals.scores
    for name, minimum in sorted(spec.gate.evals.min_scores.items()):
        if scores.get(name, -math.inf) < minimum:
            return f"eval {name} = {scores.get(name)} is below the gate's minimum {minimum}"
    stable_scores = ((stable_bundle or {}).get("evals") or {}).get("scores") or {}
    for name, allowed in sorted(spec.gate.evals.max_regression.items()):
        if name in stable_scores and name in scores:
            drop = stable_scores[name] - scores[name]
            if drop > allowed + 1e-12:
                return (
                    f"eval {name} = {scores[name]} regresses {drop:.4g} from stable's "
                    f"{stable_scores[name]} (allowed {allowed})"
                )
    return None


@dataclass
class _Planner:
    name: str
    spec: FineTuneReleaseSpec
    observed: Observed
    commands: dict[str, str]
    now: datetime
    verdict: StageVerdict
    decision: Decision
    revision: str = field(init=False)

    def __post_init__(self) -> None:
        self.revision = revision_of(self.spec.bundle)

    # ---- helpers ------------------------------------------------------------------------------

    @property
    def st(self) -> FineTuneReleaseStatus:
        return self.decision.status

    @property
    def full(self) -> int:
        return self.spec.serving.replicas

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.decision.events.append(Event("Warning" if warning else "Normal", reason, message))

    def set_phase(self, phase: str, message: str) -> None:
        self.st.phase = phase  # type: ignore[assignment]
        self.st.message = message

    def requeue(self, seconds: float) -> None:
        self.decision.requeue(seconds)

    def consume(self, command: str) -> str | None:
        value = self.commands.get(command)
        if value is not None and command not in self.decision.consumed_commands:
            self.decision.consumed_commands.append(command)
        return value

    def history(self, revision: str, outcome: str, reason: str, started: datetime | None) -> None:
        bundle = self.bundle_of(revision)
        entry = HistoryEntry(
            revision=revision,
            bundle=bundle_summary(bundle) if bundle else {},
            outcome=outcome,
            reason=reason,
            started_at=started,
            finished_at=self.now,
        )
        self.st.history = [entry, *self.st.history][:HISTORY_LIMIT]

    def retire(self, revision: str | None, delay: str) -> None:
        if not revision:
            return
        seconds = int(parse_duration(delay).total_seconds())
        self.st.retired = [
            RetiredRevision(revision=revision, since=self.now, scale_down_after_seconds=seconds),
            *(r for r in self.st.retired if r.revision != revision),
        ]

    def bundle_of(self, revision: str) -> Bundle | None:
        if revision == self.revision:
            return self.spec.bundle
        if revision == self.st.stable_revision and self.st.stable_bundle:
            return Bundle.model_validate(self.st.stable_bundle)
        found = self.observed.revisions.get(revision)
        return found.bundle if found else None

    def retained(self) -> set[str]:
        return {r.revision for r in self.st.retired if r.revision in self.observed.revisions}

    def clear_candidate(self) -> None:
        self.st.candidate_revision = None
        self.st.candidate_since = None
        self.st.stage = None

    # ---- the decision ------------------------------------------------------------------------

    def run(self) -> Decision:
        stable = self.st.stable_revision
        if stable is None:
            self.first_release()
        else:
            self.with_stable(stable)
        # Commands that mean nothing in this state are dropped, not left to fire later; an
        # approval stays while a rollout is on, since it may name a stage still to come.
        for command in COMMANDS:
            if command != APPROVE or self.st.phase not in IN_PROGRESS:
                self.consume(command)
        self.plan_revisions()
        self.st.conditions = conditions(self.st, self.revision, self.now)
        return self.decision

    def first_release(self) -> None:
        """Nothing to compare against yet: gate it, bring it up, route everything to it."""
        problem = gate_problem(self.spec, None)
        if problem:
            self.gated(problem)
            return
        self.st.candidate_revision = self.revision
        self.st.candidate_since = self.st.candidate_since or self.now
        self.st.stage = None
        if not self.observed.ready(self.revision, self.full):
            self.set_phase("Pending", f"waiting for revision {self.revision} to become Available")
            self.requeue(2)
            return
        if not self.route_in_place(Route.only(self.revision), "routing all traffic to it"):
            return
        self.history(self.revision, "Promoted", "first revision", self.st.candidate_since)
        self.promoted(f"first revision {self.revision} serves all traffic")

    def with_stable(self, stable: str) -> None:
        candidate = self.st.candidate_revision
        in_progress = self.st.phase in IN_PROGRESS and candidate not in (None, stable)
        if self.revision == stable:
            if in_progress:
                self.rollback(f"bundle set back to stable revision {stable}", reverted=True)
            else:
                self.steady(stable)
        elif self.revision == candidate and in_progress:
            if self.st.stage is None:
                self.fast_rollback(stable)  # a rollback to a retained revision, in flight
            else:
                self.progress(stable)
        elif self.revision == candidate:
            # Rolled back or gated: hold on stable until the bundle changes or a retry.
            if self.consume(RETRY) is not None:
                self.event("Retry", f"retrying revision {candidate} from the first stage")
                self.start_candidate(stable)
            else:
                self.steady(stable)
        else:
            if in_progress:
                self.supersede(candidate)
            if self.revision in self.retained():
                self.fast_rollback(stable)
            else:
                self.start_candidate(stable)

    # ---- states ------------------------------------------------------------------------------

    def steady(self, stable: str) -> None:
        self.decision.route = Route.only(stable)
        if self.st.phase is None:
            self.set_phase("Promoted", f"revision {stable} serves all traffic")

    def gated(self, problem: str) -> None:
        message = f"revision {self.revision} not deployed: {problem}"
        if self.st.phase != "Gated" or self.st.candidate_revision != self.revision:
            self.history(self.revision, "Gated", problem, self.now)
            self.event("Gated", message, warning=True)
        self.clear_candidate()
        self.st.candidate_revision = self.revision
        self.set_phase("Gated", message)
        if self.st.stable_revision:
            self.decision.route = Route.only(self.st.stable_revision)

    def start_candidate(self, stable: str) -> None:
        problem = gate_problem(self.spec, self.st.stable_bundle)
        if problem:
            self.gated(problem)
            return
        first = self.spec.stages[0]
        self.st.candidate_revision = self.revision
        self.st.candidate_since = self.now
        self.st.stage = _stage_status(0, first)
        self.st.analysis = []
        self.event(
            "RolloutStarted",
            f"candidate {self.revision} against stable {stable}: {_describe(self.spec.bundle)}",
        )
        self.progress(stable)

    def supersede(self, candidate: str | None) -> None:
        reason = f"superseded by revision {self.revision}"
        self.history(candidate or "", "Superseded", reason, self.st.candidate_since)
        self.event("Superseded", f"candidate {candidate} {reason}")
        self.retire(candidate, self.spec.strategy.abort_scale_down_delay)
        self.clear_candidate()

    def progress(self, stable: str) -> None:
        candidate = self.revision
        assert self.st.stage is not None
        stages = self.spec.stages
        index = min(self.st.stage.index, len(stages) - 1)
        stage = stages[index]

        abort = self.consume(ABORT)
        if abort is not None:
            self.rollback(f"aborted by command{': ' + abort if abort else ''}")
            return
        if self.verdict.failed:
            self.rollback(self.verdict.reason or "analysis failed")
            return
        if self.consume(RESUME) is not None and self.st.stage.hold:
            # A fresh start for the person's decision: the maxDuration and error clocks restart.
            held = self.st.stage
            held.hold, held.inconclusive, held.waiting_since = None, False, self.now
            held.error_since, held.errors, held.next_analysis_at = None, 0, None
            self.event("Resumed", f"stage {stage.name} resumed by command")
        approval = self.consume(APPROVE)
        if approval is not None and approval in ("", stage.name) and not self.st.stage.approved:
            self.st.stage.approved = True
            self.event("Approved", f"stage {stage.name} approved")

        needed = candidate_replicas(self.spec, stage)
        if not self.observed.ready(candidate, needed):
            # Traffic moves only once the candidate can take it: the route holds as it is,
            # unless it would send traffic to an unavailable or superseded revision.
            self.decision.route = self.held_route(stable, candidate)
            self.set_phase(
                "Paused" if self.spec.paused else "Pending",
                f"waiting for candidate {candidate} to have {needed} ready "
                f"replica{'s' if needed != 1 else ''} for stage {stage.name}",
            )
            self.requeue(2)
            return
        if self.spec.paused or self.st.stage.hold:
            self.decision.route = self.held_route(stable, candidate)
            self.set_phase(
                "Paused",
                self.st.stage.hold
                or f"paused in stage {stage.name}; set spec.paused=false to go on",
            )
            return

        if index == len(stages) - 1 and self.observed.route == Route.only(candidate):
            self.promote(stable)  # the promotion's route write is in place: finish it
            return
        desired = Route.split(stable, candidate, stage.weight or 0, stage.mirror or 0)
        self.decision.route = desired
        phase = "Shadow" if stage.mirror else "Progressing"
        if self.observed.route != desired:
            self.set_phase(phase, f"moving traffic for stage {stage.name}: {_route_text(stage)}")
            self.requeue(1)
            return
        if self.st.stage.started_at is None:
            self.st.stage.started_at = self.now
            self.event("StageStarted", f"stage {stage.name}: {_route_text(stage)} to {candidate}")
        elapsed = self.now - self.st.stage.started_at
        if (
            self.verdict.analyzed
            and not self.verdict.passed
            and self.held_by_analysis(stage, phase)
        ):
            return
        duration = parse_duration(stage.duration) if stage.duration else timedelta(0)
        waiting = []
        if elapsed < duration:
            waiting.append(f"{int((duration - elapsed).total_seconds())}s of {stage.duration} left")
            self.requeue((duration - elapsed).total_seconds())
        if not self.verdict.passed:  # the next window is due at the analysis clock's time
            waiting.append(self.verdict.reason or "analysis has not passed")
        if stage.approval == "manual" and not self.st.stage.approved:
            waiting.append(f"waiting for approval (kubectl finetune approve {self.name})")
        if waiting:
            self.set_phase(phase, f"stage {stage.name}: {'; '.join(waiting)}")
            return
        if index == len(stages) - 1:
            self.promote(stable)
            return
        self.event(
            "StageCompleted", f"stage {stage.name} passed after {int(elapsed.total_seconds())}s"
        )
        self.st.stage = _stage_status(index + 1, stages[index + 1])
        if self.verdict.analyzed:  # the next stage passes on its own measurements only
            self.verdict = StageVerdict(passed=False, reason="the stage is not analysed yet")
        self.progress(stable)  # the next stage's route in this same decision, if ready for it

    def held_by_analysis(self, stage: Stage, phase: str) -> bool:
        """Error past onError.after, or a stage past its longest time without a Pass
        (Inconclusive): roll back or pause for a person, as the spec says. True when acted."""
        assert self.st.stage is not None and self.st.stage.started_at is not None
        on_error = self.spec.strategy.analysis.on_error
        since = self.st.stage.error_since
        if self.verdict.error:
            if since is None or self.now - since < parse_duration(on_error.after):
                if since is not None:
                    self.requeue(
                        (since + parse_duration(on_error.after) - self.now).total_seconds()
                    )
                self.set_phase(
                    phase,
                    f"stage {stage.name}: holding traffic, analysis cannot measure: "
                    f"{self.verdict.reason}",
                )
                return True
            reason = f"analysis failing for {on_error.after}: {self.verdict.reason}"
            if on_error.action == "rollback":
                self.rollback(reason)
            else:
                self.hold("AnalysisErrorPaused", reason)
            return True
        clock = self.st.stage.waiting_since or self.st.stage.started_at
        if self.now - clock < stage.longest:
            self.requeue((clock + stage.longest - self.now).total_seconds())
            return False
        self.st.analysis = inconclusive(self.st.analysis)
        self.st.stage.inconclusive = True
        waited = int((self.now - clock).total_seconds())
        self.hold(
            "Inconclusive",
            f"stage {stage.name} inconclusive: no Pass after {waited}s: {self.verdict.reason}",
        )
        return True

    def hold(self, reason: str, message: str) -> None:
        """Pauses the stage for a person: the route stays, the phase is Paused."""
        assert self.st.stage is not None
        message = (
            f"{message}; `kubectl finetune resume {self.name}` to try again, "
            f"`kubectl finetune abort {self.name}` to roll back"
        )
        self.st.stage.hold = message
        self.event(reason, message, warning=True)
        self.set_phase("Paused", message)

    def held_route(self, stable: str, candidate: str) -> Route:
        route = self.observed.route
        found = self.observed.revisions.get(candidate)
        if route is None or not route.revisions <= {stable, candidate}:
            return Route.only(stable)
        if candidate in route.revisions and not (found and found.available):
            return Route.only(stable)
        return route

    def route_in_place(self, route: Route, doing: str) -> bool:
        """Asks for `route`; True once it is observed in place. A phase that says where traffic
        is (Promoted) is only claimed once the route says so too."""
        self.decision.route = route
        if self.observed.route == route:
            return True
        self.st.message = f"{self.st.candidate_revision}: {doing}"
        self.requeue(1)
        return False

    def promote(self, stable: str) -> None:
        """The route flips to the candidate; its pods are neither restarted nor copied."""
        candidate = self.revision
        if not self.route_in_place(Route.only(candidate), "promoting: all traffic to it"):
            return
        self.retire(stable, self.spec.strategy.scale_down_delay)
        self.history(candidate, "Promoted", "all stages passed", self.st.candidate_since)
        self.promoted(
            f"candidate {candidate} promoted; {stable} kept for {self.spec.strategy.scale_down_delay}"
        )

    def promoted(self, message: str) -> None:
        self.st.stable_revision = self.revision
        self.st.stable_bundle = self.spec.bundle.to_wire()
        self.clear_candidate()
        self.st.retired = [r for r in self.st.retired if r.revision != self.revision]
        self.event("Promoted", message)
        self.set_phase("Promoted", message)

    def rollback(self, reason: str, *, reverted: bool = False) -> None:
        """All traffic to stable in one route write; the candidate stays warm for
        abortScaleDownDelay, then goes to zero replicas."""
        stable, candidate = self.st.stable_revision, self.st.candidate_revision
        assert stable is not None
        self.decision.route = Route.only(stable)
        self.history(candidate or "", "RolledBack", reason, self.st.candidate_since)
        self.retire(candidate, self.spec.strategy.abort_scale_down_delay)
        self.clear_candidate()
        if not reverted:
            self.st.candidate_revision = candidate  # held: the spec still asks for it
        message = f"rolled back to stable {stable}: {reason}"
        self.event("RolledBack", message, warning=not reverted)
        self.set_phase("RolledBack", message)

    def fast_rollback(self, stable: str) -> None:
        """A bundle set back to a revision still retained (it served production before): no
        stages, one route flip once its pods are ready again."""
        target = self.revision
        self.st.candidate_revision = target
        self.st.candidate_since = self.st.candidate_since or self.now
        self.st.stage = None
        if not self.observed.ready(target, self.full):
            self.decision.route = Route.only(stable)
            self.set_phase("Pending", f"scaling retained revision {target} back up to roll back")
            self.requeue(2)
            return
        if not self.route_in_place(Route.only(target), "rolling back: all traffic to it"):
            return
        self.retire(stable, self.spec.strategy.abort_scale_down_delay)
        self.history(
            target,
            "RolledBack",
            f"bundle set back to retained revision {target}",
            self.st.candidate_since,
        )
        message = f"rolled back to retained revision {target} (was {stable})"
        self.promoted(message)
        self.decision.events[-1] = Event("Warning", "RolledBack", message)
        self.set_phase("RolledBack", message)

    # ---- objects ------------------------------------------------------------------------------

    def plan_revisions(self) -> None:
        """Replica counts for every revision the release keeps; deletions past the history."""
        stable, candidate = self.st.stable_revision, self.st.candidate_revision
        plans: dict[str, RevisionPlan] = {}
        candidate_count = 0
        if candidate and self.st.phase in IN_PROGRESS:
            stage = self.st.stage
            if stage is None:  # first release, or a rollback to a retained revision
                candidate_count = self.full
            else:
                stages = self.spec.stages
                candidate_count = candidate_replicas(
                    self.spec, stages[min(stage.index, len(stages) - 1)]
                )
            plans[candidate] = RevisionPlan(
                candidate, candidate_count, "candidate", self.bundle_of(candidate)
            )
        if stable is not None:
            stable_count = self.full
            if self.spec.traffic.provider == "replicas" and candidate_count:
                # One Service over both revisions: the split is the replica ratio.
                stable_count = max(self.full - candidate_count, 0)
            plans[stable] = RevisionPlan(stable, stable_count, "stable", self.bundle_of(stable))

        keep = self.spec.strategy.revision_history_limit
        retired = [r for r in self.st.retired if r.revision not in plans]
        self.st.retired = retired[:keep]
        for entry in self.st.retired:
            until = entry.since + timedelta(seconds=entry.scale_down_after_seconds)
            # Behind the replicas provider's shared Service a warm pod would take live traffic.
            warm = self.now < until and self.spec.traffic.provider != "replicas"
            if warm:
                self.requeue((until - self.now).total_seconds())
            found = self.observed.revisions.get(entry.revision)
            replicas = found.replicas if (warm and found) else 0
            plans[entry.revision] = RevisionPlan(entry.revision, replicas, "retired")
        self.decision.revisions = list(plans.values())
        self.decision.delete = sorted(r for r in self.observed.revisions if r not in plans)


def _stage_status(index: int, stage: Stage) -> StageStatus:
    return StageStatus(
        index=index, name=stage.name, weight=stage.weight or 0, mirror=stage.mirror or 0
    )


def _route_text(stage: Stage) -> str:
    return f"mirror {stage.mirror}%" if stage.mirror else f"weight {stage.weight}%"


def _describe(bundle: Bundle) -> str:
    return ", ".join(f"{k} {v}" for k, v in bundle_summary(bundle).items())


def conditions(status: FineTuneReleaseStatus, revision: str, now: datetime) -> list[Condition]:
    """kstatus conditions: Ready (the spec's bundle serves all traffic), Reconciling (a rollout
    is moving), Stalled (it cannot move on without a person); and, while a candidate is being
    analysed, Analysis (False when its metrics cannot be measured)."""
    phase = status.phase or "Pending"
    ready = phase in ("Promoted", "RolledBack") and status.stable_revision == revision
    reconciling = phase in ("Pending", "Shadow", "Progressing")
    held = phase == "Paused" and status.stage is not None and status.stage.hold is not None
    stalled = phase in ("Gated", "Failed") or (phase == "RolledBack" and not ready) or held
    previous = {c.type: c for c in status.conditions}

    def condition(kind: str, value: bool, reason: str, message: str | None = None) -> Condition:
        text = "True" if value else "False"
        before = previous.get(kind)
        changed = before is None or before.status != text
        return Condition(
            type=kind,
            status=text,
            reason=reason,
            message=(status.message or "") if message is None else message,
            last_transition_time=now if changed else before.last_transition_time,
            observed_generation=status.observed_generation,
        )

    found = [
        condition("Ready", ready, phase),
        condition("Reconciling", reconciling, phase if reconciling else "Idle"),
        condition(
            "Stalled",
            stalled,
            ("Held" if held else phase) if stalled else "Progressing" if reconciling else "Idle",
        ),
    ]
    if status.stage is not None and status.analysis:
        errors = [r for r in status.analysis if r.outcome == "Error"]
        if errors:
            found.append(
                condition(
                    "Analysis",
                    False,
                    "MetricsUnavailable",
                    "; ".join(f"{r.metric}: {r.message}" for r in errors),
                )
            )
        else:
            order = ("Fail", "Inconclusive", "NoData", "Pass")
            worst = min(status.analysis, key=lambda r: order.index(r.outcome))
            found.append(condition("Analysis", True, worst.outcome, worst.message or ""))
    return found


def plan(
    name: str,
    spec: FineTuneReleaseSpec,
    status: FineTuneReleaseStatus,
    observed: Observed,
    *,
    now: datetime,
    generation: int | None = None,
    commands: dict[str, str] | None = None,
    verdict: StageVerdict = NO_ANALYSIS,
) -> Decision:
    """The Decision for one release at `now`. Pure: same inputs, same Decision."""
    decision = Decision(status=status.model_copy(deep=True))
    decision.status.observed_generation = generation
    planner = _Planner(name, spec, observed, commands or {}, now, verdict, decision)
    return planner.run()
