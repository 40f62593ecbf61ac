"""How a release's objects are named and labelled, shared by the builders and the routers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .resource import API_VERSION, KIND

MANAGED_BY = "finetune-release-operator"
RELEASE_LABEL = "finetune.dev/release"
REVISION_LABEL = "finetune.dev/revision"
ROLE_LABEL = "finetune.dev/role"


@dataclass(frozen=True)
class ReleaseRef:
    """The owning FineTuneRelease: everything it owns carries an ownerReference to it, so
    deleting the release deletes them (Kubernetes' garbage collector)."""

    name: str
    namespace: str
    uid: str

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def metadata(self, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": {
                "app.kubernetes.io/managed-by": MANAGED_BY,
                "app.kubernetes.io/name": self.name,
                RELEASE_LABEL: self.name,
                **(labels or {}),
            },
            "ownerReferences": [self.owner_reference()],
        }


def object_name(release: str, revision: str) -> str:
    """`<release>-<revision>`: the Deployment, Service and ConfigMap of one revision."""
    return f"{release}-{revision}"
