"""The eval Job: a bundle's eval suite run against one revision's Service before any traffic.
Pure builder: a plain dict for server-side apply.

It is labelled with the candidate's revision (it is cleaned up with the candidate's objects) and
with the revision it measures; its pod carries the release label but not the revision label, so
no Deployment or Service of a revision selects it. The result is the pod's termination message
(JSON: docs/evals.md); FallbackToLogsOnError makes a crash's last lines the reason."""

from __future__ import annotations

from typing import Any

from ftrelease.api.durations import parse_duration
from ftrelease.api.ownership import RELEASE_LABEL, REVISION_LABEL, ROLE_LABEL, ReleaseRef
from ftrelease.api.ownership import object_name as revision_object_name
from ftrelease.api.spec import FineTuneReleaseSpec
from ftrelease.rollout.types import EvalJobPlan

from .pod import BUNDLE_DIR, BUNDLE_PATH, OPERATOR_IMAGE, Mounts

EVALUATED_LABEL = "finetune.dev/evaluated-revision"
EVAL_JOB_LABEL = "finetune.dev/eval-job"
TERMINATION_LOG = "/dev/termination-log"
CASES_DIR = "/etc/finetune-evals"


def service_url(release: str, namespace: str, revision: str, port: int) -> str:
    """The revision's own Service (not the route): the OpenAI API of exactly that revision."""
    return f"http://{revision_object_name(release, revision)}.{namespace}.svc:{port}/v1"


def eval_job(ref: ReleaseRef, spec: FineTuneReleaseSpec, plan: EvalJobPlan) -> dict[str, Any]:
    """The Job that runs the candidate's suite against revision `plan.target`."""
    bundle, candidate, target, name = plan.bundle, plan.candidate, plan.target, plan.name
    run = bundle.evals.run
    assert run is not None
    base_url = service_url(ref.name, ref.namespace, target, spec.serving.port)
    model = bundle.routing.model_name
    volumes: list[dict[str, Any]] = [
        {"name": "bundle", "configMap": {"name": revision_object_name(ref.name, candidate)}}
    ]
    mounts = [{"name": "bundle", "mountPath": BUNDLE_DIR, "readOnly": True}]
    env = {
        "FINETUNE_EVAL_BASE_URL": base_url,
        "FINETUNE_EVAL_MODEL": model,
        "FINETUNE_EVAL_SUITE": bundle.evals.suite,
        "FINETUNE_EVAL_VERSION": bundle.evals.version,
        "FINETUNE_EVAL_REVISION": target,
    }
    if run.builtin is not None:
        cases = run.builtin.cases
        if cases.config_map is not None:
            volumes.append({"name": "cases", "configMap": {"name": cases.config_map.name}})
            mounts.append({"name": "cases", "mountPath": CASES_DIR, "readOnly": True})
            cases_path = f"{CASES_DIR}/{cases.config_map.key}"
        else:
            assert cases.uri is not None
            files = Mounts()
            cases_path = files.path(cases.uri)
            volumes += files.volumes
            mounts += files.mounts
        container: dict[str, Any] = {
            "image": OPERATOR_IMAGE,
            "command": ["python", "-m", "ftrelease.evals"],
            "args": [
                f"--base-url={base_url}",
                f"--model={model}",
                f"--cases={cases_path}",
                f"--suite={bundle.evals.suite}",
                f"--version={bundle.evals.version}",
                f"--bundle={BUNDLE_PATH}",
                f"--max-tokens={run.builtin.max_tokens}",
                f"--result={TERMINATION_LOG}",
            ],
        }
    else:
        own = run.container
        assert own is not None
        container = {"image": own.image, "args": list(own.args)}
        if own.command:
            container["command"] = list(own.command)
        env.update({e.name: e.value for e in own.env})
    container.update(
        name="evaluator",
        env=[{"name": k, "value": v} for k, v in env.items()],
        volumeMounts=mounts,
        terminationMessagePath=TERMINATION_LOG,
        terminationMessagePolicy="FallbackToLogsOnError",
    )
    deadline = int(parse_duration(spec.gate.evals.deadline).total_seconds())
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": ref.metadata(
            name, {REVISION_LABEL: candidate, EVALUATED_LABEL: target, ROLE_LABEL: "eval"}
        ),
        "spec": {
            "backoffLimit": spec.gate.evals.retries,
            "activeDeadlineSeconds": deadline,
            "template": {
                "metadata": {"labels": {RELEASE_LABEL: ref.name, EVAL_JOB_LABEL: name}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
