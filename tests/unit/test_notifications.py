"""The notifications' outbox and confirm webhooks, through whole rollouts on the in-memory world
(the cycle the operator runs), and the bodies the webhooks receive."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ftrelease.api.ownership import ReleaseRef
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.api.status import StageStatus, WebhookState
from ftrelease.api.verdict import Event
from ftrelease.operator.webhook_bodies import confirm_json, notice_json, notice_slack
from ftrelease.rollout import outbox
from ftrelease.rollout.commands import PROMOTE
from ftrelease.rollout.types import Answer, Route
from pydantic import ValidationError

from tests.unit.rollout_world import Counted, World, spec_with, with_bundle_version

SECRET = {"secretKeyRef": {"name": "hooks", "key": "url"}}


def hooks(*webhooks: dict, confirm: list[dict] | None = None) -> dict:
    return {"webhooks": list(webhooks), "confirm": confirm or []}


def walked(world: World, measure=None) -> list[str]:
    """A new bundle walked to promotion: four stages of a minute each."""
    world.spec = with_bundle_version(world.spec, "v2")
    world.settle(measure=measure)
    for _ in range(5):
        world.advance(61, measure=measure)
    assert world.status.phase == "Promoted"
    return [n.reason for n in world.status.notifications.pending]


def acknowledge(world: World, name: str, upto: int) -> None:
    world.status.notifications.webhooks[name] = WebhookState(delivered=upto)


def test_every_transition_of_a_walk_is_numbered_in_order_with_the_status_it_happened_in():
    world = World(spec_with(notifications=hooks({"name": "oncall", "urlFrom": SECRET})))
    world.settle()
    first = [n.reason for n in world.status.notifications.pending]
    assert first == ["Promoted"]
    reasons = walked(world)
    assert reasons == [
        "Promoted",
        "RolloutStarted",
        "StageStarted",
        "StageCompleted",
        "StageStarted",
        "StageCompleted",
        "StageStarted",
        "StageCompleted",
        "StageStarted",
        "Promoted",
    ]
    pending = world.status.notifications.pending
    assert [n.sequence for n in pending] == list(range(1, 11))
    assert world.status.notifications.sequence == 10
    started = [n for n in pending if n.reason == "StageStarted"]
    assert [(n.stage, n.weight, n.mirror) for n in started] == [
        ("shadow", 0, 100),
        ("canary-1", 1, 0),
        ("canary-10", 10, 0),
        ("full", 100, 0),
    ]
    assert {n.candidate_revision for n in started} == {world.revision}
    assert pending[-1].phase == "Promoted" and pending[-1].stable_revision == world.revision
    times = [n.time for n in pending]
    assert times == sorted(times) and times[-1] - times[1] >= timedelta(minutes=4)


def test_a_rollback_by_analysis_is_told_with_its_reason_and_analysis_lines_only_if_asked():
    everything = {"name": "audit", "urlFrom": SECRET, "reasons": ["Analysis", "RolledBack"]}
    spec = spec_with(notifications=hooks({"name": "oncall", "urlFrom": SECRET}, everything))
    world = World(spec)
    world.settle()
    world.spec = with_bundle_version(world.spec, "v2")
    bad = Counted(candidate_rate=0.5, rps=50)
    for _ in range(6):
        world.advance(31, measure=bad)
    assert world.status.phase == "RolledBack"
    reasons = [n.reason for n in world.status.notifications.pending]
    assert reasons.count("RolledBack") == 1 and "Analysis" in reasons
    rolled = next(n for n in world.status.notifications.pending if n.reason == "RolledBack")
    assert rolled.type == "Warning" and "errors" in rolled.message
    assert rolled.phase == "RolledBack"
    # Without the audit webhook, metric outcome lines are not kept.
    quiet = World(spec_with(notifications=hooks({"name": "oncall", "urlFrom": SECRET})))
    quiet.settle()
    quiet.spec = with_bundle_version(quiet.spec, "v2")
    for _ in range(6):
        quiet.advance(31, measure=bad)
    kept = [n.reason for n in quiet.status.notifications.pending]
    assert "RolledBack" in kept and "Analysis" not in kept


def test_notices_stay_until_every_webhook_acknowledged_them_and_a_full_outbox_drops_the_oldest():
    spec = spec_with(
        notifications=hooks(
            {"name": "oncall", "urlFrom": SECRET}, {"name": "chat", "urlFrom": SECRET}
        )
    )
    world = World(spec)
    world.settle()
    walked(world)
    acknowledge(world, "oncall", 10)
    acknowledge(world, "chat", 4)
    world.step()
    assert [n.sequence for n in world.status.notifications.pending] == list(range(5, 11))
    assert outbox.undelivered(world.status, "oncall") == []
    assert [n.sequence for n in outbox.undelivered(world.status, "chat", sent=7)] == [8, 9, 10]
    acknowledge(world, "chat", 10)
    world.step()
    assert world.status.notifications.pending == []

    box = world.status.notifications
    for _ in range(outbox.MAX_PENDING // 9 + 2):  # receivers down through many rollouts
        for n in range(9):
            outbox.post(world.spec, world.status, [Event("Normal", "Retry", f"n{n}")], world.now)
    assert len(box.pending) == outbox.MAX_PENDING
    assert box.dropped == box.sequence - 10 - outbox.MAX_PENDING
    assert box.pending[-1].sequence == box.sequence


def test_without_webhooks_there_is_no_outbox():
    world = World(spec_with())
    world.settle()
    world.spec = with_bundle_version(world.spec, "v2")
    world.advance(61)
    assert world.status.notifications is None


def test_a_stage_waits_for_every_confirm_webhook_then_starts():
    answers: dict[tuple[str, int], Answer] = {}
    asked: list[tuple[str, int]] = []

    def confirm(name: str, stage: int) -> Answer:
        asked.append((name, stage))
        return answers.get((name, stage), Answer(False, "HTTP 403: change freeze"))

    confirmers = [{"name": "freeze", "urlFrom": SECRET}, {"name": "owner", "urlFrom": SECRET}]
    world = World(spec_with(notifications=hooks(confirm=confirmers)), confirm=confirm)
    world.settle()
    stable = world.revision
    world.spec = with_bundle_version(world.spec, "v2")
    world.settle()
    assert world.route == Route.only(stable), "no mirror before the shadow stage is confirmed"
    assert world.status.stage.name == "shadow" and world.status.stage.started_at is None
    assert "freeze (HTTP 403: change freeze), owner (HTTP 403" in world.status.message
    waiting = [e for d in world.decisions for e in d.events if e.reason == "AwaitingConfirmation"]
    assert len(waiting) == 1
    assert world.decisions[-1].requeue_after == 10
    answers[("freeze", 0)] = Answer(True, "HTTP 200")
    world.advance(10)
    assert world.status.stage.confirmed == ["freeze"] and world.route == Route.only(stable)
    assert "waits for its confirm webhooks to answer 2xx: owner (HTTP 403" in world.status.message
    asked.clear()
    answers[("owner", 0)] = Answer(True, "HTTP 204")
    world.advance(10)
    assert ("freeze", 0) not in asked, "a webhook that confirmed is not asked again"
    assert world.status.stage.started_at is not None
    assert world.route == Route.split(stable, world.revision, 0, 100)
    # A 2xx for an earlier stage says nothing about the next one.
    world.advance(61)
    assert world.status.stage.name == "canary-1" and world.status.stage.started_at is None
    assert world.route == Route.split(stable, world.revision, 0, 100), "held where it was"
    assert world.status.stage.confirmed == []


def test_a_stage_confirmed_only_after_a_few_reconciles_still_starts():
    """The operator asks on its own threads: the first reconciles of a stage have no answer."""
    answered: list[bool] = []

    def confirm(name: str, stage: int) -> Answer:
        answered.append(True)
        return Answer(len(answered) > 3, "no answer yet")

    world = World(
        spec_with(notifications=hooks(confirm=[{"name": "freeze", "urlFrom": SECRET}])),
        confirm=confirm,
    )
    world.settle()
    stable = world.revision
    world.spec = with_bundle_version(world.spec, "v2")
    # Its pods up already (a decision that lost a write conflict created them): the rollout's
    # first decision goes straight to asking.
    world.replicas[world.revision] = world.spec.serving.replicas
    world.bundles[world.revision] = world.spec.bundle
    world.step()
    assert world.status.stage.confirm_waiting_since is not None
    assert world.status.phase == "Pending", "a rollout under way, not still Promoted"
    world.settle()
    assert world.route == Route.split(stable, world.revision, 0, 100)
    assert world.status.phase == "Shadow" and world.status.stage.started_at is not None
    reasons = [e.reason for d in world.decisions for e in d.events]
    assert reasons.count("RolloutStarted") == 1


def test_confirm_answers_about_another_stage_or_candidate_are_not_taken():
    world = World(
        spec_with(notifications=hooks(confirm=[{"name": "freeze", "urlFrom": SECRET}])),
        confirm=lambda name, stage: Answer(stage == 1, f"stage {stage}"),
    )
    world.settle()
    world.spec = with_bundle_version(world.spec, "v2")
    world.advance(600)
    assert world.status.stage.index == 0 and world.status.stage.started_at is None
    assert world.status.phase != "Promoted"


def test_promote_full_by_a_person_needs_no_confirmation():
    world = World(
        spec_with(notifications=hooks(confirm=[{"name": "freeze", "urlFrom": SECRET}])),
        confirm=lambda name, stage: Answer(False, "HTTP 503"),
    )
    world.settle()
    world.spec = with_bundle_version(world.spec, "v2")
    world.settle()
    world.step(commands={PROMOTE: '{"by": "alice", "full": true}'})
    world.settle()
    assert world.status.phase == "Promoted"


def test_a_manual_stage_tells_once_that_it_waits_for_a_person():
    spec = spec_with(notifications=hooks({"name": "oncall", "urlFrom": SECRET}))
    spec.strategy.stages[2].approval = "manual"
    world = World(FineTuneReleaseSpec.model_validate(spec.to_wire()))
    world.settle()
    world.spec = with_bundle_version(world.spec, "v2")
    world.settle()
    for _ in range(6):
        world.advance(61)
    reasons = [n.reason for n in world.status.notifications.pending]
    assert reasons.count("AwaitingApproval") == 1
    waiting = next(n for n in world.status.notifications.pending if n.reason == "AwaitingApproval")
    assert waiting.stage == "canary-10" and "kubectl finetune approve" in waiting.message


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("reasons", ["StageStarted", "Deployed"], "Deployed"),
        ("format", "teams", "json"),
        ("urlFrom", {"url": "http://x"}, "secretKeyRef"),
    ],
)
def test_a_bad_webhook_names_its_field(field, value, says):
    hook = {"name": "oncall", "urlFrom": SECRET, field: value}
    with pytest.raises(ValidationError) as error:
        spec_with(notifications=hooks(hook))
    assert "notifications.webhooks.0" in str(error.value) and says in str(error.value)


def test_webhook_names_are_unique():
    hook = {"name": "oncall", "urlFrom": SECRET}
    with pytest.raises(ValidationError, match="names must be unique"):
        spec_with(notifications=hooks(hook, hook))


def test_the_bodies_carry_the_notice_and_an_id_that_repeats_with_it():
    world = World(spec_with(notifications=hooks({"name": "oncall", "urlFrom": SECRET})))
    world.settle()
    reasons = walked(world)
    notice = world.status.notifications.pending[reasons.index("StageStarted", 3)]
    ref = ReleaseRef("support-bot", "ml", "uid-1")
    body = notice_json(ref, notice)
    assert body["kind"] == "FineTuneReleaseNotification"
    assert body["id"] == f"uid-1/{notice.sequence}" and body["sequence"] == notice.sequence
    assert body["reason"] == "StageStarted" and body["stage"]["name"] == "canary-1"
    assert body["release"] == {"name": "support-bot", "namespace": "ml", "uid": "uid-1"}
    assert body["candidateRevision"] == world.revision
    slack = notice_slack(ref, notice)
    assert slack["text"].startswith("*ml/support-bot* StageStarted: stage canary-1")
    fields = {f["title"]: f["value"] for f in slack["attachments"][0]["fields"]}
    assert fields["Stage"] == "canary-1 (weight 1%)" and fields["Candidate"] == world.revision
    stage = StageStatus(index=1, name="canary-1", weight=1)
    question = confirm_json(ref, stage, "abc", "def", world.now)
    assert question["kind"] == "FineTuneReleaseConfirmation"
    assert question["stage"] == {"index": 1, "name": "canary-1", "weight": 1, "mirror": 0}


def test_every_reason_the_planner_can_emit_is_one_a_webhook_can_name():
    """A new Event the planner emits must be added to REASONS, or no webhook could ask for it."""
    import re
    from pathlib import Path

    import ftrelease.rollout as rollout
    from ftrelease.api.notifications import REASONS

    calls = re.compile(
        r'(?:self\.(?:event|hold)\(\s*|self\.act\([^"]*?,\s*|Event\(\s*"\w+",\s*)"([A-Z]\w+)"'
    )
    emitted = {
        reason
        for path in Path(rollout.__file__).parent.glob("*.py")
        for reason in calls.findall(path.read_text())
    }
    assert {"StageStarted", "Inconclusive", "Approved", "AnalysisError"} <= emitted
    assert emitted <= set(REASONS), emitted - set(REASONS)
