"""Commands for a running release: rollback, abort, approve, retry, promote, pause, resume
(status is in status.py). Each sets an annotation that the operator acts on once and removes,
naming who asked (the user as the apiserver knows them, from a SelfSubjectReview) and the reason
given; the operator answers every one with an Event. None of them touches the spec, so a GitOps
sync of the unchanged manifest neither undoes nor repeats them: a pause is kept in status
(status.pausedBy) until a resume, which also releases a hold the operator put on a stage
(Inconclusive, onError: pause, a missed progress deadline). spec.paused, set in Git, pauses
too. A command that the release's state makes meaningless is refused here, before anything is
written."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kubernetes import config
from kubernetes.client import AuthenticationV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from ftrelease.api.resource import GROUP, PLURAL, VERSION
from ftrelease.api.status import FineTuneReleaseStatus
from ftrelease.rollout import commands
from ftrelease.rollout.types import IN_PROGRESS
from ftrelease.rollout.undo import previous_stable


class Releases:
    def __init__(self, args: argparse.Namespace) -> None:
        api = config.new_client_from_config(config_file=args.kubeconfig, context=args.context)
        self.client = api
        self.api = CustomObjectsApi(api)
        _, current = config.list_kube_config_contexts(config_file=args.kubeconfig)
        self.namespace = args.namespace or current.get("context", {}).get("namespace", "default")

    def get(self, name: str) -> dict[str, Any]:
        return self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def patch(self, name: str, body: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, body)

    def whoami(self) -> str:
        """The user this kubeconfig is, as the apiserver sees it (a SelfSubjectReview)."""
        try:
            review = AuthenticationV1Api(self.client).create_self_subject_review(
                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
            )
        except ApiException as exc:  # an apiserver older than 1.28, or the review forbidden
            return f"an unknown user (SelfSubjectReview failed: {exc.status} {exc.reason})"
        return review.status.user_info.username


class Refused(Exception):
    """The release's state makes the command meaningless; nothing was written."""


def _status(body: dict[str, Any]) -> FineTuneReleaseStatus:
    return FineTuneReleaseStatus.model_validate(body.get("status") or {})


def _in_progress(st: FineTuneReleaseStatus) -> bool:
    return st.phase in IN_PROGRESS and st.candidate_revision not in (None, st.stable_revision)


def rollback_target(name: str, st: FineTuneReleaseStatus, wanted: str) -> str:
    """The revision a rollback goes to, as the operator will choose it: during a rollout the
    stable; otherwise the previous stable, or the retained revision `wanted` names (a prefix
    will do). Refused when there is none."""
    stable = st.stable_revision
    if stable is None:
        raise Refused(f"{name} has no stable revision yet: nothing to roll back to")
    retained = [r.revision for r in st.retired if r.revision != stable]
    if not wanted:
        if _in_progress(st):
            return stable
        previous = previous_stable(st)
        if previous is None:
            raise Refused(
                f"{name}: no previous stable revision is retained (retained: "
                f"{', '.join(retained) or 'none'}); name one with --to"
            )
        return previous
    matches = [r for r in dict.fromkeys([stable, *retained]) if r.startswith(wanted)]
    if len(matches) != 1:
        which = "matches more than one" if matches else "is not a retained revision"
        raise Refused(
            f"{name}: --to {wanted} {which} (stable {stable}; retained: "
            f"{', '.join(retained) or 'none'}; `kubectl finetune history {name}` lists them)"
        )
    if matches[0] == stable and not _in_progress(st):
        raise Refused(f"{name}: revision {stable} already serves all traffic")
    return matches[0]


def _check(command: str, name: str, body: dict[str, Any], args: argparse.Namespace) -> dict:
    """The command's own arguments, or Refused when the release's state makes it meaningless."""
    st = _status(body)
    if command == commands.ROLLBACK:
        return {"to": rollback_target(name, st, args.to or "")}
    if command == commands.ABORT and not _in_progress(st):
        serving = (
            f": revision {st.stable_revision} serves all traffic" if st.stable_revision else ""
        )
        raise Refused(
            f"{name} has no rollout in progress to abort (phase {st.phase or 'Pending'}{serving}). "
            f"To put the previous stable back: kubectl finetune rollback {name}"
        )
    if command in (commands.PROMOTE, commands.APPROVE) and not _in_progress(st):
        raise Refused(f"{name} has no rollout in progress (phase {st.phase or 'Pending'})")
    if command == commands.RESUME and st.paused_by is None and not (st.stage and st.stage.hold):
        in_git = body.get("spec", {}).get("paused") is True
        raise Refused(
            f"{name} is not paused by a command nor held"
            + (
                ": spec.paused is true in its manifest; set it to false where the manifest is "
                "kept (Git)"
                if in_git
                else f" (phase {st.phase or 'Pending'})"
            )
        )
    if command == commands.RETRY and st.phase not in ("RolledBack", "Gated"):
        raise Refused(f"{name} has nothing to retry (phase {st.phase or 'Pending'})")
    if command == commands.PROMOTE:
        return {"full": args.full}
    if command == commands.APPROVE:
        return {"stage": args.stage}
    return {}


def _describe(command: str, found: dict[str, Any]) -> str:
    if command == commands.PROMOTE:
        return "promotion to 100%" if found["full"] else "completion of the current stage"
    if command == commands.ROLLBACK:
        return f"rollback to {found['to']}"
    if command == commands.APPROVE and found["stage"]:
        return f"approval of stage {found['stage']}"
    return command.removeprefix(commands.COMMAND_PREFIX)


def request(command: str):
    def run(args: argparse.Namespace) -> int:
        releases = Releases(args)
        try:
            found = _check(command, args.name, releases.get(args.name), args)
        except Refused as refused:
            print(f"error: {refused}", file=sys.stderr)
            return 1
        by = releases.whoami()
        value = commands.encode(by, args.reason, **found)
        releases.patch(args.name, {"metadata": {"annotations": {command: value}}})
        print(
            f"{args.name}: {_describe(command, found)} requested by {by}; "
            f"`kubectl finetune status {args.name}` shows when the operator acted"
        )
        return 0

    return run


def add_commands(sub: argparse._SubParsersAction) -> None:
    def command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text)
        parser.add_argument("name", help="the FineTuneRelease")
        parser.add_argument("-n", "--namespace", help="namespace (default: the context's)")
        parser.add_argument("--kubeconfig")
        parser.add_argument("--context")
        parser.add_argument("--reason", default="", help="recorded in the Event and history")
        parser.set_defaults(func=func)
        return parser

    command(
        "rollback",
        "all traffic to the previous stable (or --to a retained revision) in one route write",
        request(commands.ROLLBACK),
    ).add_argument("--to", help="a retained revision (`kubectl finetune history` lists them)")
    command(
        "abort", "end the rollout in progress: all traffic back on stable", request(commands.ABORT)
    )
    command("approve", "approve the current manual stage", request(commands.APPROVE)).add_argument(
        "--stage", default="", help="approve only if this is the current stage"
    )
    command(
        "retry",
        "roll a rolled-back or gated bundle out again from the first stage",
        request(commands.RETRY),
    )
    command(
        "promote",
        "complete the current stage now (its time, analysis and approval)",
        request(commands.PROMOTE),
    ).add_argument(
        "--full", action="store_true", help="go straight to 100%% and promote, skipping the rest"
    )
    command(
        "pause",
        "hold rollouts where they are until resume (kept in status: a GitOps sync keeps it)",
        request(commands.PAUSE),
    )
    command(
        "resume",
        "let a paused or held rollout go on (held: analysis tries again)",
        request(commands.RESUME),
    )
