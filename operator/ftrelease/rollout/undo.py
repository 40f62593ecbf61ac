"""Putting a revision that served before back on all traffic: a candidate's rollback to stable
(analysis, abort, a missed deadline, the bundle set back), and a rollback to any retained
revision, asked for by `kubectl finetune rollback` or by setting the bundle back to it. Pure,
like the planner."""

from __future__ import annotations

from ftrelease.api.durations import parse_duration
from ftrelease.api.status import FineTuneReleaseStatus, RollbackRequest

from .commands import Command
from .holds import Holds
from .types import IN_PROGRESS, Event, IncidentPlan, Route


def previous_stable(status: FineTuneReleaseStatus, retained: set[str] | None = None) -> str | None:
    """The newest retired revision that served all traffic before the stable one (of those
    `retained`, if given: the ones whose objects still exist). The CLI's `rollback` names the
    same one before asking."""
    return next(
        (
            r.revision
            for r in status.retired
            if r.role == "stable"
            and r.revision != status.stable_revision
            and (retained is None or r.revision in retained)
        ),
        None,
    )


class Undo(Holds):
    """The planner's rollbacks."""

    def rollback(
        self, reason: str, *, ended_by: str, reverted: bool = False, record: bool = False
    ) -> None:
        """All traffic to stable in one route write; the candidate stays warm for
        abortScaleDownDelay, then goes to zero replicas. `record`: keep an incident record
        (a rollback by analysis: its figures and the candidate's outputs, for people)."""
        stable, candidate = self.st.stable_revision, self.st.candidate_revision
        assert stable is not None
        self.decision.route = Route.only(stable)
        if record and candidate:
            self.decision.incident = IncidentPlan(
                revision=candidate,
                stable=stable,
                reason=reason,
                bundle=self.bundle_of(candidate),
                analysis=[r.model_copy() for r in self.st.analysis],
                stage=self.st.stage.model_copy() if self.st.stage else None,
                at=self.now,
            )
        self.history(
            candidate or "", "RolledBack", reason, self.st.candidate_since, ended_by=ended_by
        )
        self.retire(candidate, self.spec.strategy.abort_scale_down_delay)
        self.clear_candidate()
        if not reverted:
            self.st.candidate_revision = candidate  # held: the spec still asks for it
        message = f"rolled back to stable {stable}: {reason}"
        self.event("RolledBack", message, warning=not reverted)
        self.set_phase("RolledBack", message)

    def previous_stable(self) -> str | None:
        """The revision that served all traffic before the stable one, if still retained."""
        return previous_stable(self.st, self.retained())

    def start_rollback(self, stable: str, command: Command) -> None:
        """kubectl finetune rollback [--to REVISION]: during a rollout, back to stable (as
        abort); otherwise to the previous stable or the revision named, if retained."""
        in_progress = self.st.phase in IN_PROGRESS and self.st.candidate_revision
        wanted = command.arg("to")
        target = wanted or (stable if in_progress else self.previous_stable())
        retained = sorted(self.retained() - {stable})
        problem = None
        if target is None:
            problem = "no previous stable revision is retained"
        elif target == stable and not in_progress:
            problem = f"revision {target} already serves all traffic"
        elif target != stable and target not in retained:
            problem = f"revision {target} is not retained"
        if problem:
            known = f" (retained: {', '.join(retained)})" if retained else ""
            self.act(command, "RollbackRefused", f"rollback refused: {problem}{known}", True)
            return
        assert target is not None
        if in_progress:
            reason = f"rolled back {command.said}"
            if target == stable:
                self.acted.add(command.annotation)
                self.rollback(reason, ended_by=command.by)
                return
            candidate = self.st.candidate_revision
            self.history(
                candidate or "", "RolledBack", reason, self.st.candidate_since, ended_by=command.by
            )
            self.retire(candidate, self.spec.strategy.abort_scale_down_delay)
            self.clear_candidate()
        self.st.rolling_back_to = RollbackRequest(
            revision=target,
            by=command.by,
            reason=command.reason,
            requested_at=self.now,
            spec_revision=self.revision,
            pods_needed=self.pods_needed(target),
        )
        self.act(command, "RollbackStarted", f"rolling back from {stable} to {target}")

    def set_back(self, stable: str) -> None:
        """The bundle set back to a revision still retained (it served production before): no
        stages, one route flip once it has its pods again."""
        self.st.rolling_back_to = RollbackRequest(
            revision=self.revision,
            by=self.bundle_set_by or "a spec change",
            reason=f"bundle set back to retained revision {self.revision}",
            requested_at=self.now,
            spec_revision=self.revision,
            pods_needed=self.pods_needed(self.revision),
        )
        self.finish_rollback(stable)

    def pods_needed(self, target: str) -> int:
        """A target kept warm takes all traffic at once, on the pods it was kept with (a
        platform team's choice: keepPreviousStable); a cold one once it has all its pods."""
        kept = self.spec.kept_previous_pods
        warm = kept and self.observed.ready_pods(target) >= kept
        return kept if warm else self.full

    def finish_rollback(self, stable: str) -> None:
        """Moves all traffic to the rollback's target in one route write once it has the pods
        it needs (pods_needed); until then the route stays on stable. Past
        strategy.progressDeadline without them, the rollback is given up."""
        request = self.st.rolling_back_to
        assert request is not None
        target, needed = request.revision, request.pods_needed
        self.st.stage = None
        self.st.candidate_revision = None
        ready = self.observed.ready_pods(target)
        if ready < needed:
            self.decision.route = Route.only(stable)
            found = self.observed.revisions.get(target)
            why = f": {found.unavailable}" if found and found.unavailable else ""
            waiting = f"{target} has {ready} of the {needed} ready pods it needs{why}"
            deadline = parse_duration(self.spec.strategy.progress_deadline)
            if self.now - request.requested_at >= deadline:
                self.give_up_rollback(stable, f"not ready within progressDeadline: {waiting}")
                return
            self.set_phase("Pending", f"rolling back to {target}: {waiting}")
            self.requeue(1)
            return
        if not self.route_in_place(Route.only(target), f"rolling back to {target}"):
            self.st.message = f"rolling back to {target}: moving all traffic to it"
            return
        bundle = self.bundle_of(target)
        assert bundle is not None, "a retained revision's ConfigMap holds its bundle"
        self.st.rolling_back_to = None
        self.retire(stable, self.spec.strategy.scale_down_delay, role="stable")
        said = f"by {request.by}" + (f": {request.reason}" if request.reason else "")
        self.history(
            stable, "RolledBack", f"rolled back to {target} {said}", None, ended_by=request.by
        )
        self.st.stable_revision = target
        self.st.stable_bundle = bundle.to_wire()
        self.st.retired = [r for r in self.st.retired if r.revision != target]
        held = request.spec_revision
        if held == target:
            message = f"rolled back to retained revision {target} (was {stable}) {said}"
        else:
            self.st.candidate_revision = held  # the spec still asks for it; held on target
            message = (
                f"spec bundle (revision {held}) is rolled back: {target} serves all traffic, "
                f"{said}. To go on, apply a new bundle, or `kubectl finetune retry {self.name}` "
                f"to roll {held} out again from its first stage"
            )
        self.decision.events.append(Event("Warning", "RolledBack", message))
        self.set_phase("RolledBack", message)

    def give_up_rollback(self, stable: str, why: str) -> None:
        request = self.st.rolling_back_to
        assert request is not None
        self.st.rolling_back_to = None
        # Still retained (cold), for another try: its objects are not deleted.
        self.retire(request.revision, "0s", role="stable")
        message = (
            f"rollback to {request.revision} given up, {why}; {stable} still serves all traffic"
        )
        self.event("RollbackFailed", message, warning=True)
        held = request.spec_revision
        if held != stable:
            self.st.candidate_revision = held
        self.set_phase("RolledBack" if held != stable else "Promoted", message)
