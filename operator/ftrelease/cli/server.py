"""Server-side dry runs against the cluster of the current kubeconfig: the apiserver applies the
CRD schema, its CEL rules and any admission webhooks, and persists nothing."""

from __future__ import annotations

import json
import re
from typing import Any

from kubernetes import config, dynamic
from kubernetes.client.exceptions import ApiException

from ftrelease.api.resource import API_VERSION, KIND
from ftrelease.api.validation import Problem
from ftrelease.api.wire import apply_patch_text

FIELD_MANAGER = "kubectl-finetune"
_TYPED_PATCH_ERROR = re.compile(
    r"typed patch object \(.*?\): \.(?P<path>[^:\s]+): (?P<message>.*)$"
)


class ServerDryRun:
    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        self._releases = dynamic.DynamicClient(api_client).resources.get(
            api_version=API_VERSION, kind=KIND
        )
        self._default_namespace = (
            config.list_kube_config_contexts(config_file=kubeconfig)[1]
            .get("context", {})
            .get("namespace", "default")
        )

    def problems(self, body: dict[str, Any]) -> list[Problem]:
        namespace = (body.get("metadata") or {}).get("namespace") or self._default_namespace
        name = (body.get("metadata") or {}).get("name")
        try:
            self._releases.server_side_apply(
                body=apply_patch_text(body),
                name=name,
                namespace=namespace,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                dry_run="All",
                query_params=[("fieldValidation", "Strict")],
            )
        except ApiException as exc:
            return problems_from_status(exc)
        return []


def problems_from_status(exc: ApiException) -> list[Problem]:
    """The apiserver's causes as problems: field path and message, as `kubectl apply` shows."""
    try:
        status = json.loads(exc.body)
    except (TypeError, ValueError):
        return [Problem("", f"apiserver answered {exc.status}: {exc.reason}")]
    causes = (status.get("details") or {}).get("causes") or []
    message = status.get("message") or f"apiserver answered {exc.status}"
    if not causes:
        # Server-side apply reports type errors in the message alone:
        # "failed to create typed patch object (...): .spec.paused: expected boolean, got ..."
        typed = _TYPED_PATCH_ERROR.search(message)
        if typed:
            return [Problem(typed["path"], typed["message"])]
        return [Problem("", message)]
    return sorted({Problem(c.get("field", ""), c.get("message", "")) for c in causes})
