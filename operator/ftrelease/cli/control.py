"""Commands for a running release: abort, approve, retry, promote, pause, resume (status is in
status.py). abort, approve, retry and promote set an annotation that the operator acts on and
removes (promote's names who asked, as the apiserver knows them); pause and resume set
spec.paused (a spec change, so GitOps tools see the drift); resume also releases a hold the
operator put on a stage (Inconclusive, onError: pause, a missed progress deadline)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from kubernetes import config
from kubernetes.client import AuthenticationV1Api, CustomObjectsApi

from ftrelease.api.resource import GROUP, PLURAL, VERSION
from ftrelease.rollout.types import ABORT, APPROVE, PROMOTE, RESUME, RETRY


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
        review = AuthenticationV1Api(self.client).create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
        return review.status.user_info.username


def _request(args: argparse.Namespace, command: str, value: str) -> int:
    Releases(args).patch(args.name, {"metadata": {"annotations": {command: value}}})
    print(
        f"{args.name}: {command.split('/')[-1]} requested; `kubectl finetune status "
        f"{args.name}` shows when the operator acted"
    )
    return 0


def abort(args: argparse.Namespace) -> int:
    return _request(args, ABORT, args.reason)


def approve(args: argparse.Namespace) -> int:
    return _request(args, APPROVE, args.stage)


def retry(args: argparse.Namespace) -> int:
    return _request(args, RETRY, "retry")


def promote(args: argparse.Namespace) -> int:
    releases = Releases(args)
    request = json.dumps({"full": args.full, "by": releases.whoami()})
    releases.patch(args.name, {"metadata": {"annotations": {PROMOTE: request}}})
    what = "promotion to 100%" if args.full else "completion of the current stage"
    print(
        f"{args.name}: {what} requested; `kubectl finetune status {args.name}` shows when the "
        "operator acted"
    )
    return 0


def set_paused(paused: bool):
    def run(args: argparse.Namespace) -> int:
        patch: dict[str, Any] = {"spec": {"paused": paused}}
        if not paused:
            patch["metadata"] = {"annotations": {RESUME: "resume"}}
        Releases(args).patch(args.name, patch)
        print(f"{args.name}: {'paused' if paused else 'resumed'}")
        return 0

    return run


def add_commands(sub: argparse._SubParsersAction) -> None:
    def command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text)
        parser.add_argument("name", help="the FineTuneRelease")
        parser.add_argument("-n", "--namespace", help="namespace (default: the context's)")
        parser.add_argument("--kubeconfig")
        parser.add_argument("--context")
        parser.set_defaults(func=func)
        return parser

    command("abort", "roll back to stable now (one route write)", abort).add_argument(
        "--reason", default="", help="recorded in status and the Event"
    )
    command("approve", "approve the current manual stage", approve).add_argument(
        "--stage", default="", help="approve only if this is the current stage"
    )
    command("retry", "roll a rolled-back or gated bundle out again from the first stage", retry)
    command(
        "promote", "complete the current stage now (its time, analysis and approval)", promote
    ).add_argument(
        "--full", action="store_true", help="go straight to 100%% and promote, skipping the rest"
    )
    command("pause", "hold the rollout where it is", set_paused(True))
    command(
        "resume",
        "let a paused or held rollout go on (held: analysis tries again)",
        set_paused(False),
    )
