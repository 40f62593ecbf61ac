"""A pod's volumes on the local kubelet's disk: ConfigMaps and Secrets written out as files, the
projected service-account volume (a real token bound to the pod), a PersistentVolumeClaim as its
PersistentVolume's host path, hostPath as is, emptyDir a fresh directory."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException


class PodVolumes:
    def __init__(self, core: client.CoreV1Api, pod: dict[str, Any], directory: Path) -> None:
        self.core = core
        self.pod = pod
        self.namespace = pod["metadata"]["namespace"]
        self.pod_name = pod["metadata"]["name"]
        self.uid = pod["metadata"]["uid"]
        self.directory = directory

    def _read(self, kind: str, name: str, namespaced: bool = True) -> Any:
        read = getattr(
            self.core,
            f"read_namespaced_{kind}" if namespaced else f"read_{kind}",
        )
        try:
            return read(name, self.namespace) if namespaced else read(name)
        except ApiException as exc:
            if exc.status == 404:
                raise LookupError(f'{kind.replace("_", "")} "{name}" not found') from None
            raise LookupError(f'{kind.replace("_", "")} "{name}": {exc.reason}') from None

    def mount(self) -> dict[str, Path]:
        """Each container's mount paths and the local directories behind them; LookupError
        names the volume and what is missing."""
        volume_dir = self.directory / "volumes"
        volume_dir.mkdir(parents=True, exist_ok=True)
        local: dict[str, Path] = {}
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            target = volume_dir / name
            where = f'volume "{name}": '
            try:
                if "configMap" in volume:
                    source = self._read("config_map", volume["configMap"]["name"])
                    write_files(target, source.data or {}, volume["configMap"].get("items"))
                elif "secret" in volume:
                    source = self._read("secret", volume["secret"]["secretName"])
                    data = {k: base64.b64decode(v) for k, v in (source.data or {}).items()}
                    write_files(target, data, volume["secret"].get("items"))
                elif "projected" in volume:
                    self._project(target, volume["projected"]["sources"])
                elif "persistentVolumeClaim" in volume:
                    target = self._claim_path(volume["persistentVolumeClaim"]["claimName"])
                elif "hostPath" in volume:
                    target = Path(volume["hostPath"]["path"])
                elif "emptyDir" in volume:
                    target.mkdir(exist_ok=True)
                else:
                    raise LookupError(
                        "only configMap, secret, projected, persistentVolumeClaim, hostPath "
                        "and emptyDir volumes run locally"
                    )
            except LookupError as exc:
                raise LookupError(where + str(exc)) from None
            local[name] = target
        mounts: dict[str, Path] = {}
        for container in self.pod["spec"]["containers"]:
            for mount in container.get("volumeMounts") or []:
                path = local[mount["name"]]
                mounts[mount["mountPath"]] = (
                    path / mount["subPath"] if mount.get("subPath") else path
                )
        return mounts

    def _project(self, target: Path, sources: list[dict[str, Any]]) -> None:
        """A projected volume, as the service-account admission plugin adds to every pod: a
        token of the pod's ServiceAccount bound to the pod, the CA and the namespace."""
        files: dict[str, str] = {}
        for source in sources:
            if token := source.get("serviceAccountToken"):
                account = self.pod["spec"].get("serviceAccountName", "default")
                request = {
                    "spec": {
                        "expirationSeconds": token.get("expirationSeconds", 3600),
                        "boundObjectRef": {"kind": "Pod", "name": self.pod_name, "uid": self.uid},
                    }
                }
                issued = self.core.create_namespaced_service_account_token(
                    account, self.namespace, request
                )
                files[token["path"]] = issued.status.token
            elif config_map := source.get("configMap"):
                data = self._read("config_map", config_map["name"]).data or {}
                for item in config_map.get("items") or [{"key": k, "path": k} for k in data]:
                    files[item["path"]] = data[item["key"]]
            elif downward := source.get("downwardAPI"):
                values = {"metadata.namespace": self.namespace, "metadata.name": self.pod_name}
                for item in downward.get("items") or []:
                    files[item["path"]] = values.get(item["fieldRef"]["fieldPath"], "")
        write_files(target, files, None)

    def _claim_path(self, claim_name: str) -> Path:
        claim = self._read("persistent_volume_claim", claim_name)
        if not claim.spec.volume_name or claim.status.phase != "Bound":
            raise LookupError(f'persistentvolumeclaim "{claim_name}" is not bound')
        volume = self._read("persistent_volume", claim.spec.volume_name, namespaced=False)
        source = volume.spec.host_path or volume.spec.local
        if source is None:
            raise LookupError(f"persistentvolume {volume.metadata.name!r} has no local path")
        return Path(source.path)


def write_files(target: Path, data: dict[str, Any], items: list[dict] | None) -> None:
    target.mkdir(parents=True, exist_ok=True)
    paths = {i["key"]: i["path"] for i in items} if items else {k: k for k in data}
    for key, path in paths.items():
        if key not in data:
            raise LookupError(f"key {key!r} not found")
        file = target / path
        file.parent.mkdir(parents=True, exist_ok=True)
        value = data[key]
        file.write_bytes(value if isinstance(value, bytes) else value.encode())
