"""The planner: one pure function from what is (spec, status, observed objects, commands,
analysis, now) to what should be (a Decision). No I/O; the operator applies the Decision.

Lifecycle (DESIGN.md §2): a new bundle is a candidate; it passes the eval gate, comes up beside
the stable revision, walks the stages (mirror, then weights), and is promoted by a route flip;
a failure, an abort or a bundle set back puts all traffic on stable in one route write.

All progress lives in status, so a restarted operator resumes exactly where it was: a stage's
clock is the time its route was first observed in place, and a route already in place is never
written again."""

from __future__ import annotations

from datetime import datetime, timedelta

from ftrelease.api.bundle import Bundle
from ftrelease.api.durations import parse_duration
from ftrelease.api.route import CAPABILITIES
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import FineTuneReleaseStatus, PauseRequest, StageStatus
from ftrelease.api.strategy import Stage
from ftrelease.api.verdict import NO_ANALYSIS, StageVerdict

from .bookkeeping import bundle_summary
from .commands import ABORT, APPROVE, COMMANDS, PAUSE, PROMOTE, RESUME, RETRY, ROLLBACK, Command
from .conditions import conditions
from .confirm import Confirming
from .evaluation import Evaluation
from .replicas import candidate_replicas, plan_revisions
from .types import IN_PROGRESS, Confirmations, Decision, Observed, Route
from .undo import Undo


class _Planner(Undo, Evaluation, Confirming):
    """The state machine: one method per state of a release, run once per Decision."""

    # ---- the decision ------------------------------------------------------------------------

    def run(self) -> Decision:
        self.take_pause_commands()
        stable = self.st.stable_revision
        if stable is None:
            self.first_release()
        else:
            self.with_stable(stable)
        self.drop_unused_commands()
        plan_revisions(self.spec, self.observed, self.decision, self.now, self.bundle_of)
        self.st.conditions = conditions(self.st, self.revision, self.now)
        return self.decision

    def take_pause_commands(self) -> None:
        """A pause by command is kept in status (a GitOps sync of the manifest cannot undo it)
        and holds every rollout until a resume, which also releases a stage's hold (in
        progress). spec.paused, for teams that pause through Git, holds alongside it."""
        pause = self.consume(PAUSE)
        if pause is not None:
            self.st.paused_by = PauseRequest(by=pause.by, reason=pause.reason, at=self.now)
            self.act(pause, "Paused", "rollouts hold where they are until resumed;")
        resume = self.commands.get(RESUME)
        if resume is not None and pause is None and self.st.paused_by is not None:
            self.consume(RESUME)
            self.st.paused_by = None
            still = "; spec.paused is still true in the manifest" if self.spec.paused else ""
            self.act(resume, "Resumed", f"the pause is lifted{still};")

    def drop_unused_commands(self) -> None:
        """Commands that mean nothing in this state are dropped, with an Event that says so, not
        left to fire later; an approval stays while a rollout is on, since it may name a stage
        still to come."""
        for annotation in COMMANDS:
            if annotation == APPROVE and self.st.phase in IN_PROGRESS:
                continue
            command = self.consume(annotation)
            if command is None or annotation in self.acted:
                continue
            hint = ""
            if annotation == ABORT:
                hint = f"; to put the previous stable back: kubectl finetune rollback {self.name}"
            elif annotation == RESUME and self.spec.paused:
                hint = "; spec.paused is true in the manifest: set it false where it is kept"
            nothing = f"nothing to {command.name} in phase {self.st.phase or 'Pending'}{hint}"
            self.act(command, "CommandIgnored", f"{command.name} ignored: {nothing}; asked", True)

    def first_release(self) -> None:
        """Nothing to compare against yet: gate it, bring it up, route everything to it."""
        gate = self.st.gate
        fresh = gate is None or gate.revision != self.revision
        if gate is not None and not fresh and gate.passed is False:
            retry = self.consume(RETRY)
            if retry is None:
                self.gated(gate.reason)
                return
            self.act(retry, "Retry", f"retrying revision {self.revision}'s eval gate")
            fresh = True
        if fresh and not self.begin_gate():
            return
        self.st.candidate_revision = self.revision
        self.st.candidate_since = self.st.candidate_since or self.now
        self.st.stage = None
        if not self.observed.ready(self.revision, self.full):
            self.set_phase("Pending", f"waiting for revision {self.revision} to become Available")
            self.requeue(2)
            return
        if not self.evals_passed(None):
            return
        if not self.route_in_place(Route.only(self.revision), "routing all traffic to it"):
            return
        self.history(
            self.revision,
            "Promoted",
            "first revision",
            self.st.candidate_since,
            started_by=self.bundle_set_by,
            ended_by="the operator",
        )
        self.promoted(f"first revision {self.revision} serves all traffic")

    def with_stable(self, stable: str) -> None:
        rollback = self.consume(ROLLBACK)
        if rollback is not None:
            self.start_rollback(stable, rollback)
        if self.st.rolling_back_to is not None:
            self.finish_rollback(stable)
            return
        candidate = self.st.candidate_revision
        in_progress = self.st.phase in IN_PROGRESS and candidate not in (None, stable)
        if self.revision == stable:
            if in_progress:
                self.rollback(
                    f"bundle set back to stable revision {stable}",
                    ended_by=self.bundle_set_by or "a spec change",
                    reverted=True,
                )
            else:
                self.steady(stable)
        elif self.revision == candidate and in_progress:
            self.progress(stable)
        elif self.revision == candidate:
            # Rolled back or gated: hold on stable until the bundle changes or a retry.
            retry = self.consume(RETRY)
            if retry is not None:
                self.act(retry, "Retry", f"retrying revision {candidate} from the first stage")
                self.start_candidate(stable, started_by=retry.by)
            else:
                self.steady(stable)
        else:
            if in_progress:
                self.supersede(candidate)
            if self.revision in self.retained():
                self.set_back(stable)
            else:
                self.start_candidate(stable)

    # ---- states ------------------------------------------------------------------------------

    def steady(self, stable: str) -> None:
        self.decision.route = Route.only(stable)
        if self.st.phase is None:
            self.set_phase("Promoted", f"revision {stable} serves all traffic")

    def start_candidate(self, stable: str, started_by: str | None = None) -> None:
        if not self.begin_gate():
            return
        first = self.spec.stages[0]
        self.st.candidate_revision = self.revision
        self.st.candidate_since = self.now
        self.st.started_by = started_by or self.bundle_set_by
        self.st.stage = _stage_status(0, first)
        self.st.analysis = []
        self.event(
            "RolloutStarted",
            f"candidate {self.revision} against stable {stable}: {_describe(self.spec.bundle)}",
        )
        self.progress(stable)

    def move_on(self, stable: str, index: int, stages: list[Stage], command: Command) -> None:
        """kubectl finetune promote: the current stage completes now (its time, analysis and
        approval waived), or with --full the last stage (100%) starts now. Traffic still moves
        only once the candidate has the pods for it."""
        full = bool(command.args.get("full"))
        target = len(stages) - 1 if full else min(index + 1, len(stages) - 1)
        what = (
            f"promoted to {stages[target].name} (100%) from stage {stages[index].name}"
            if full
            else f"stage {stages[index].name} completed"
        )
        self.st.moved_on_by = "; ".join(
            filter(None, [self.st.moved_on_by, f"{what} {command.said}"])
        )
        self.act(command, "MovedOn", what)
        if target != index:
            self.st.stage = _stage_status(target, stages[target])
            if self.verdict.analyzed:  # the next stage passes on its own measurements only
                self.verdict = StageVerdict(passed=False, reason="the stage is not analysed yet")
        self.st.stage.waived = full or target == index
        self.progress(stable)

    def supersede(self, candidate: str | None) -> None:
        reason = f"superseded by revision {self.revision}"
        self.history(
            candidate or "",
            "Superseded",
            reason,
            self.st.candidate_since,
            ended_by=self.bundle_set_by or "a spec change",
        )
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
            self.acted.add(ABORT)
            self.rollback(f"aborted {abort.said}", ended_by=abort.by)
            return
        if self.verdict.failed:
            reason = self.verdict.reason or "analysis failed"
            self.rollback(reason, ended_by="analysis", record=True)
            return
        if PROMOTE in self.commands and PROMOTE not in self.decision.consumed_commands:
            promote = self.consume(PROMOTE)
            assert promote is not None
            self.move_on(stable, index, stages, promote)
            return
        resume = self.consume(RESUME)
        if resume is not None and self.st.stage.hold:
            # A fresh start for the person's decision: the maxDuration and error clocks restart.
            held = self.st.stage
            held.hold, held.inconclusive, held.waiting_since = None, False, self.now
            held.deadline_exceeded, held.pods_waiting_since = False, None
            held.error_since, held.errors, held.next_analysis_at = None, 0, None
            if RESUME not in self.acted:  # one Event, also when it lifted a pause
                self.act(resume, "Resumed", f"stage {stage.name} resumed")
        # An approval is for one stage: the one it names (kept until then) or, bare, the
        # current one; never also the next stage this same decision may move on to.
        approval = self.commands.get(APPROVE)
        unused = APPROVE not in self.decision.consumed_commands
        if approval is not None and approval.arg("stage") in ("", stage.name) and unused:
            self.consume(APPROVE)
            self.st.stage.approved = True
            self.act(approval, "Approved", f"stage {stage.name} approved")

        needed = candidate_replicas(self.spec, stage)
        if not self.observed.ready(candidate, needed):
            # Traffic moves only once the candidate can take it: the route holds as it is,
            # unless it would send traffic to an unavailable or superseded revision.
            self.decision.route = self.held_route(stable, candidate)
            self.wait_for_pods(candidate, needed, stage)
            return
        if not self.observed.route_problem:  # else the deadline's clock runs on for the route
            self.st.stage.pods_waiting_since = None
        if self.paused or self.st.stage.hold:
            self.decision.route = self.held_route(stable, candidate)
            self.set_phase(
                "Paused", self.st.stage.hold or self.paused_message(f"in stage {stage.name}")
            )
            return
        if self.before_any_traffic(index, candidate):
            self.decision.route = self.held_route(stable, candidate)
            if not self.evals_passed(stable):
                return

        if index == len(stages) - 1 and self.observed.route == Route.only(candidate):
            self.promote(stable)  # the promotion's route write is in place: finish it
            return
        desired = Route.split(stable, candidate, stage.weight or 0, stage.mirror or 0)
        unstarted = self.st.stage.started_at is None and self.observed.route != desired
        if unstarted and not self.confirmed(candidate):
            self.decision.route = self.held_route(stable, candidate)
            return
        self.decision.route = desired
        phase = "Shadow" if stage.mirror else "Progressing"
        if self.observed.route != desired:
            self.set_phase(phase, f"moving traffic for stage {stage.name}: {_route_text(stage)}")
            self.requeue(1)
            return
        if self.observed.route_problem:
            # Written but not carried out: the stage cannot start or complete, up to the
            # deadline (a gateway may report a route it took at first and refuses later).
            self.wait_past_deadline(
                f"stage {stage.name}: the route is not in effect: {self.observed.route_problem}"
            )
            return
        if CAPABILITIES[self.spec.traffic.provider].split_follows_replicas:
            self.st.stage.effective_weight = self.observed.ready_share(candidate, stable)
        if self.st.stage.started_at is None:
            self.st.stage.started_at = self.now
            self.event("StageStarted", f"stage {stage.name}: {_route_text(stage)} to {candidate}")
        if self.st.stage.waived:  # promote --full: no time, analysis or approval to wait for
            self.promote(stable)
            return
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
        approval = f"waiting for approval (kubectl finetune approve {self.name})"
        if stage.approval == "manual" and not self.st.stage.approved:
            waiting.append(approval)
        if waiting:
            message = f"stage {stage.name}: {'; '.join(waiting)}"
            if waiting == [approval] and self.st.message != message:  # a person's turn now
                self.event("AwaitingApproval", message)
            self.set_phase(phase, message)
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

    def before_any_traffic(self, index: int, candidate: str) -> bool:
        """The first stage not started and no route to the candidate yet: where the eval gate
        stands (a rollout that already sends it traffic is past it)."""
        assert self.st.stage is not None
        route = self.observed.route
        return (
            index == 0
            and self.st.stage.started_at is None
            and not (route and candidate in route.revisions)
        )

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
        self.retire(stable, self.spec.strategy.scale_down_delay, role="stable")
        reason = self.st.moved_on_by or "all stages passed"
        self.history(
            candidate,
            "Promoted",
            reason,
            self.st.candidate_since,
            ended_by="kubectl finetune promote" if self.st.moved_on_by else "the stages' analysis",
        )
        strategy = self.spec.strategy
        kept = self.spec.kept_previous_pods
        self.promoted(
            f"candidate {candidate} promoted; {stable} keeps its pods for "
            f"{strategy.scale_down_delay}, then {kept} for {strategy.keep_previous_stable.duration}"
            f" (kubectl finetune rollback {self.name} moves traffic back)"
        )

    def promoted(self, message: str) -> None:
        self.st.stable_revision = self.revision
        self.st.stable_bundle = self.spec.bundle.to_wire()
        self.clear_candidate()
        self.st.retired = [r for r in self.st.retired if r.revision != self.revision]
        self.event("Promoted", message)
        self.set_phase("Promoted", message)


def _stage_status(index: int, stage: Stage) -> StageStatus:
    return StageStatus(
        index=index, name=stage.name, weight=stage.weight or 0, mirror=stage.mirror or 0
    )


def _route_text(stage: Stage) -> str:
    return f"mirror {stage.mirror}%" if stage.mirror else f"weight {stage.weight}%"


def _describe(bundle: Bundle) -> str:
    return ", ".join(f"{k} {v}" for k, v in bundle_summary(bundle).items())


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
    bundle_set_by: str | None = None,
    confirmations: Confirmations | None = None,
) -> Decision:
    """The Decision for one release at `now`. Pure: same inputs, same Decision. `commands`:
    the finetune.dev/* annotations; `bundle_set_by`: who last wrote spec.bundle;
    `confirmations`: the confirm webhooks' answers about the stage waiting for them."""
    decision = Decision(status=status.model_copy(deep=True))
    decision.status.observed_generation = generation
    planner = _Planner(
        name, spec, observed, commands or {}, now, verdict, decision, bundle_set_by, confirmations
    )
    return planner.run()
