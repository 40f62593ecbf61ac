"""Where a stage waits or stops for a person: a candidate short of ready pods (up to the
progress deadline), analysis that cannot measure (up to onError.after) or never passes (up to
the stage's longest time), and the route that holds meanwhile. Pure, like the planner."""

from __future__ import annotations

from ftrelease.api.durations import parse_duration
from ftrelease.api.strategy import Stage
from ftrelease.api.verdict import inconclusive

from .bookkeeping import Bookkeeping
from .types import Route


class Holds(Bookkeeping):
    """The planner's waiting and holding."""

    def rollback(
        self, reason: str, *, ended_by: str, reverted: bool = False, record: bool = False
    ) -> None:
        raise NotImplementedError  # undo.py's: all traffic back on stable

    def wait_for_pods(self, candidate: str, needed: int, stage: Stage) -> None:
        """Waits for the candidate's ready pods, up to strategy.progressDeadline."""
        found = self.observed.revisions.get(candidate)
        why = f": {found.unavailable}" if found and found.unavailable else ""
        self.wait_past_deadline(
            f"waiting for candidate {candidate} to have {needed} ready "
            f"replica{'s' if needed != 1 else ''} for stage {stage.name}{why}"
        )

    def wait_past_deadline(self, waiting: str) -> None:
        """Waits (for the candidate's pods, or for the gateway to take the stage's route) up to
        strategy.progressDeadline; past it, says why in status and an Event, then holds for a
        person or rolls back."""
        held = self.st.stage
        assert held is not None
        if held.pods_waiting_since is None:
            held.pods_waiting_since = self.now
        deadline = parse_duration(self.spec.strategy.progress_deadline)
        left = (held.pods_waiting_since + deadline - self.now).total_seconds()
        if left <= 0 and not held.hold:
            message = (
                f"progress deadline {self.spec.strategy.progress_deadline} exceeded: {waiting}"
            )
            if self.spec.strategy.on_progress_deadline == "rollback":
                self.rollback(message, ended_by="the progress deadline")
                return
            held.deadline_exceeded = True
            self.hold("ProgressDeadlineExceeded", message)
            return
        if held.hold:
            self.set_phase("Paused", held.hold)
            return
        self.set_phase("Paused" if self.paused else "Pending", waiting)
        self.requeue(min(2.0, max(left, 0.1)))

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
                self.rollback(reason, ended_by="analysis (onError: rollback)")
            else:
                self.hold("AnalysisErrorPaused", reason)
            return True
        if self.verdict.pending:  # the window asked for may yet pass the stage
            return False
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
