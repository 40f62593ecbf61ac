"""The eval gate before any traffic. Pure, like the planner.

A candidate whose bundle declares scores only is judged on them when it starts (nothing is
deployed if it fails). One whose bundle runs its evals (bundle.evals.run) is brought up and,
once its pods are ready and before its first stage's route, measured: an eval Job against its
Service and, when a comparison needs it, against the stable's (unless the stable already has a
measured result from the same suite and version). The measured scores are then judged
(gate.judge); a Job that fails or runs past its deadline gates the candidate with the Job's
reason. Gated keeps all traffic on stable."""

from __future__ import annotations

import json
import math

from ftrelease.api.bundle import Bundle
from ftrelease.api.status import EvalResult, GateStatus, ScoreCheck

from .gate import Scores, Verdict, judge
from .holds import Holds
from .types import EvalJobPlan, ObservedJob, Route

EVAL_RESULTS_KEPT = 20  # status.evals entries; a stable's result is kept for comparisons


def job_name(release: str, candidate: str, target: str, attempt: int) -> str:
    """At most 63 characters: the Job's name is a label value on its pods."""
    return f"{release[:30].rstrip('-')}-{candidate}-eval-{target}-{attempt}"


class ResultProblem(ValueError):
    """An evaluator's result that is not the documented JSON (docs/evals.md)."""


def read_result(text: str, suite: str, version: str) -> EvalResult:
    """An evaluator's result: {"scores": {name: number}, and optionally "suite", "version"
    (the bundle's when absent), "cases", "casesDigest"}. Only the scores and where they come
    from are kept; anything else it writes is ignored."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ResultProblem(f"not JSON ({exc}): {text[:200]!r}") from None
    if not isinstance(document, dict) or not isinstance(document.get("scores"), dict):
        raise ResultProblem(f'no "scores" object in {text[:200]!r}')
    scores = {}
    for name, value in document["scores"].items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ResultProblem(f"score {name!r} is not a finite number: {value!r}")
        scores[str(name)] = float(value)
    cases = document.get("cases")
    digest = document.get("casesDigest")
    return EvalResult(
        revision="",
        suite=str(document.get("suite") or suite),
        version=str(document.get("version") or version),
        state="Succeeded",
        job="",
        scores=scores,
        cases=cases if isinstance(cases, int) and not isinstance(cases, bool) else None,
        cases_digest=digest if isinstance(digest, str) else None,
    )


class Evaluation(Holds):
    """The planner's eval gate."""

    def begin_gate(self) -> bool:
        """A candidate starts: a fresh verdict for it (a retry measures again). Declared scores
        are judged at once; False when they gate it."""
        evals = self.spec.bundle.evals
        before = self.st.gate
        attempt = before.attempt + 1 if before and before.revision == self.revision else 1
        self.st.gate = GateStatus(
            revision=self.revision,
            source="measured" if evals.run else "declared",
            suite=evals.suite,
            version=evals.version,
            stable_revision=self.st.stable_revision,
            attempt=attempt,
            reason="to be measured once the candidate's pods are ready" if evals.run else "",
        )
        if evals.run is not None:
            return True
        theirs = None
        if self.st.stable_revision and self.st.stable_bundle:
            said = Bundle.model_validate(self.st.stable_bundle).evals
            theirs = Scores(
                self.st.stable_revision, said.suite, said.version, said.scores, "declared"
            )
        verdict = judge(
            self.spec.gate.evals,
            Scores(self.revision, evals.suite, evals.version, evals.scores, "declared"),
            theirs,
            stable_revision=self.st.stable_revision,
        )
        return self.conclude(verdict)

    def evals_passed(self, stable: str | None) -> bool:
        """With the candidate's pods ready and before its first traffic: True once its gate has
        passed. Meanwhile its eval Jobs run and the release waits (Pending); a failed Job or a
        failing verdict gates it."""
        gate = self.st.gate
        if gate is None or gate.revision != self.revision:
            if not self.begin_gate():
                return False
            gate = self.st.gate
            assert gate is not None
        if gate.passed is not None:
            return gate.passed
        compares = bool(self.spec.gate.evals.max_regression or self.spec.gate.evals.max_increase)
        mine = self.measured(self.revision, gate.attempt)
        theirs = self.stable_side(stable, gate.attempt) if stable and compares else None
        results = [r for r in (mine, theirs) if r is not None]
        failed = next((r for r in results if r.state == "Failed"), None)
        if failed is not None:
            self.gated(
                f"eval job {failed.job} (revision {failed.revision}) failed: {failed.message}"
            )
            return False
        running = [r for r in results if r.state == "Running"]
        if running:
            gate.reason = f"evaluating: job {', '.join(r.job for r in running)} running"
            waiting = "".join(f"; {r.message}" for r in running if r.message)
            self.set_phase(
                "Pending",
                f"revision {self.revision}: measuring {gate.suite} {gate.version} before any "
                f"traffic (kubectl logs job/{running[0].job}){waiting}",
            )
            self.requeue(5)
            return False
        verdict = judge(
            self.spec.gate.evals,
            _scores(mine),
            _scores(theirs) if theirs else None,
            stable_revision=stable,
            declared=self.spec.bundle.evals.scores,
        )
        if verdict.mismatches:
            self.event(
                "DeclaredScoresDiffer",
                f"revision {self.revision}: declared scores the measurement contradicts: "
                + "; ".join(verdict.mismatches),
                warning=True,
            )
        return self.conclude(verdict)

    def conclude(self, verdict: Verdict) -> bool:
        gate = self.st.gate
        assert gate is not None
        gate.passed, gate.comparable, gate.reason = (
            verdict.passed,
            verdict.comparable,
            verdict.reason,
        )
        gate.mismatches = verdict.mismatches
        gate.checks = [
            ScoreCheck(
                score=c.score,
                rule=c.rule,
                limit=c.limit,
                candidate=c.candidate,
                stable=c.stable,
                passed=c.passed,
            )
            for c in verdict.checks
        ]
        if not verdict.passed:
            self.gated(verdict.reason)
            return False
        if gate.source == "measured":
            self.event("EvalsPassed", f"revision {self.revision}: {verdict.reason}")
        return True

    # ---- results ----------------------------------------------------------------------------

    def stable_side(self, stable: str, attempt: int) -> EvalResult | None:
        """The stable's result to compare with: its measured one from the candidate's suite and
        version if it has one; else one measured now (measureStable), or else the newest it
        has from any suite (not comparable then). None: it has none."""
        evals = self.spec.bundle.evals
        succeeded = [r for r in self.st.evals if r.revision == stable and r.state == "Succeeded"]
        same = [r for r in succeeded if (r.suite, r.version) == (evals.suite, evals.version)]
        if same:
            return same[0]
        if self.spec.gate.evals.measure_stable:
            return self.measured(stable, attempt)
        return succeeded[0] if succeeded else None

    def measured(self, target: str, attempt: int) -> EvalResult:
        """The result of the candidate's suite on `target` in this attempt: as recorded, else
        as its Job says (recorded once it ends), else a Job to create."""
        evals = self.spec.bundle.evals
        name = job_name(self.name, self.revision, target, attempt)
        recorded = next((r for r in self.st.evals if r.job == name), None)
        if recorded is not None and recorded.state != "Running":
            return recorded
        job = self.observed.eval_jobs.get(name)
        result = EvalResult(
            revision=target,
            suite=evals.suite,
            version=evals.version,
            state="Running",
            job=name,
            attempt=attempt,
            started_at=(job.started_at if job else None) or self.now,
        )
        if job is None:
            self.decision.eval_jobs.append(
                EvalJobPlan(name, self.revision, target, attempt, self.spec.bundle)
            )
        elif job.state == "Running":
            # What its pod waits on (a missing cases ConfigMap), kept for the failure it may
            # become: a Job past its deadline deletes the pod that said so.
            result.message = job.waiting or (recorded.message if recorded else "")
        elif job.message is not None:
            result = _ended(result, job, recorded.message if recorded else "")
        self.record(result)
        return result

    def record(self, result: EvalResult) -> None:
        """Newest first; past EVAL_RESULTS_KEPT the oldest go, never the stable's or the
        candidate's (a stable's result is what later candidates are compared with)."""
        ordered = [result, *(r for r in self.st.evals if r.job != result.job)]
        protected = {self.st.stable_revision, self.revision}
        room = EVAL_RESULTS_KEPT - sum(r.revision in protected for r in ordered)
        kept = []
        for r in ordered:
            if r.revision in protected or room > 0:
                room -= r.revision not in protected
                kept.append(r)
        self.st.evals = kept

    def gated(self, problem: str) -> None:
        """No traffic for this revision: all of it stays on stable (or none flows yet). A
        candidate that was brought up for its evals is retired like an aborted one, its Job
        kept with it for `kubectl logs`."""
        message = f"revision {self.revision} gated, no traffic: {problem}"
        if self.st.phase != "Gated" or self.st.candidate_revision != self.revision:
            if (
                self.revision in self.observed.revisions
                and self.revision != self.st.stable_revision
            ):
                self.retire(self.revision, self.spec.strategy.abort_scale_down_delay)
            self.history(
                self.revision,
                "Gated",
                problem,
                self.now,
                started_by=self.bundle_set_by,
                ended_by="the eval gate",
            )
            self.event("Gated", message, warning=True)
        if self.st.gate is not None and self.st.gate.revision == self.revision:
            self.st.gate.passed, self.st.gate.reason = False, problem
        self.clear_candidate()
        self.st.candidate_revision = self.revision
        self.set_phase("Gated", message)
        if self.st.stable_revision:
            self.decision.route = Route.only(self.st.stable_revision)


def _scores(result: EvalResult) -> Scores:
    return Scores(result.revision, result.suite, result.version, result.scores, "measured")


def _ended(result: EvalResult, job: ObservedJob, waited_on: str) -> EvalResult:
    """A Job's end folded into its result: the evaluator's scores, or why it failed (with what
    its pod waited on while it ran, if anything)."""
    ended = result.model_copy(update={"finished_at": job.finished_at})
    if job.state == "Failed":
        why = job.message or ""
        if waited_on:
            why = f"{why}; while it ran: {waited_on}"
        return ended.model_copy(update={"state": "Failed", "message": why})
    if not job.message:
        why = "the Job succeeded but left no result (no termination message on its pod)"
        return ended.model_copy(update={"state": "Failed", "message": why})
    try:
        read = read_result(job.message or "", result.suite, result.version)
    except ResultProblem as exc:
        return ended.model_copy(
            update={"state": "Failed", "message": f"the evaluator's result is unreadable: {exc}"}
        )
    return ended.model_copy(
        update={
            "state": "Succeeded",
            "suite": read.suite,
            "version": read.version,
            "scores": read.scores,
            "cases": read.cases,
            "cases_digest": read.cases_digest,
            "message": f"{len(read.scores)} scores from {read.cases or 'its'} cases",
        }
    )
