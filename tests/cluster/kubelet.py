"""The local kubelet: runs the pods of the model-serving runtimes as real local processes.

KWOK plays the kubelet for every other pod (marks it Running and Ready, runs nothing). A pod
whose containers and init containers all use an image this kubelet can run (RUNNABLE_IMAGES: the
project's images, whose contents are this repository, and a vLLM stand-in) is left to it
instead (KWOK's pod stages are given KWOK_EXCLUSION, see localcluster.py), and it does for that
pod what a kubelet does:
- runs its init containers in order, each to completion, again after a back-off on failure;
- gives it an address in the local pod network (podnetwork.py) and runs each container's
  command and arguments with the image's entrypoint, its environment and its volumes
  (ConfigMaps and Secrets written out, PersistentVolumeClaims resolved to their PV's host path,
  hostPath as is, emptyDir as a fresh directory), the mount paths mapped onto those directories;
- probes each container's readiness and liveness probes as declared (httpGet) and writes the
  pod's Ready and ContainersReady conditions and container statuses, with Events when a probe
  fails (the response body appended, which a real kubelet only logs);
- restarts a container that exits or fails its liveness probe, with a back-off
  (CrashLoopBackOff in its status);
- stops the processes when the pod is deleted, within its grace period, then removes the pod.

Fault injection, for what cannot be produced for real (a server that fails 20% of requests):
entries of the ConfigMap kube-system/local-kubelet-faults add arguments to the containers of
matching pods when they start; each use leaves an Event on the pod. `python -m
tests.cluster.kubelet --kubeconfig K --workdir D` runs it; LocalCluster starts it."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from .podnetwork import NODE_IP, POD_NETWORK, is_pod_ip, local_address, pod_ips
from .podvolumes import PodVolumes

log = logging.getLogger("local-kubelet")

COMPONENT = "local-kubelet"
MODELSERVER_IMAGE = "ghcr.io/finetune-release/modelserver"
OPERATOR_IMAGE = "ghcr.io/finetune-release/operator"
# Named by the tests and the demo for a vLLM they want run (serving.image); vLLM's own image
# stays with KWOK.
VLLM_STAND_IN_IMAGE = "ghcr.io/finetune-release/vllm-stand-in"
_OFFLINE = {"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
# image repository -> (entrypoint, environment), as the Dockerfiles in docker/ declare them; the
# images' `python` is this interpreter, whose environment has the repository installed. The one
# stand-in is for vLLM (tests/cluster/vllm_stand_in.py: the builtin server, translated).
RUNNABLE_IMAGES: dict[str, tuple[list[str], dict[str, str]]] = {
    MODELSERVER_IMAGE: ([sys.executable, "-m", "ftrelease.modelserver"], _OFFLINE),
    OPERATOR_IMAGE: ([sys.executable, "-m", "ftrelease"], {"PYTHONUNBUFFERED": "1"}),
    VLLM_STAND_IN_IMAGE: (
        [sys.executable, str(Path(__file__).with_name("vllm_stand_in.py"))],
        _OFFLINE,
    ),
}
# The jq condition (a KWOK Stage selector key) true for pods this kubelet runs.
RELEASE_LABEL = "finetune.dev/release"
KWOK_EXCLUSION = {
    "key": f'(.metadata.labels["{RELEASE_LABEL}"] != null) and '
    "([(.spec.containers + (.spec.initContainers // []))[].image | "
    + " or ".join(f'startswith("{repo}:") or startswith("{repo}@")' for repo in RUNNABLE_IMAGES)
    + "] | all)",
    "operator": "NotIn",
    "values": ["true"],
}
FAULTS = ("kube-system", "local-kubelet-faults")
BACKOFF_START, BACKOFF_MAX = 5.0, 60.0  # the real kubelet: 10 s doubling to 5 min
TICK = 0.5


def image_repository(image: str) -> str:
    name = image.split("@", 1)[0]
    head, sep, tag = name.rpartition(":")
    return head if sep and "/" not in tag else name


def runnable(pod: dict[str, Any]) -> bool:
    """A release's model-serving pod, every image of which this kubelet can run (the operator's
    own pods, which use its image too, stay with KWOK: a second operator would compete)."""
    containers = pod["spec"].get("containers") or []
    every = [*containers, *(pod["spec"].get("initContainers") or [])]
    labels = pod.get("metadata", {}).get("labels") or {}
    return (
        RELEASE_LABEL in labels
        and bool(containers)
        and all(image_repository(c.get("image", "")) in RUNNABLE_IMAGES for c in every)
    )


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _die_with_parent() -> None:
    """A container process ends with the kubelet, even one killed with SIGKILL."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Probe:
    """One httpGet probe of one container, counting consecutive results as a kubelet does."""

    def __init__(self, spec: dict[str, Any], ports: dict[str, int], address: str) -> None:
        get = spec.get("httpGet") or {}
        port = get.get("port")
        port = ports.get(port, port) if isinstance(port, str) else port
        self.url = f"http://{address}:{port}{get.get('path', '/')}"
        self.period = float(spec.get("periodSeconds", 10))
        self.timeout = float(spec.get("timeoutSeconds", 1))
        self.failure_threshold = int(spec.get("failureThreshold", 3))
        self.success_threshold = int(spec.get("successThreshold", 1))
        self.initial_delay = float(spec.get("initialDelaySeconds", 0))
        self.successes = self.failures = 0
        self.next_at = 0.0
        self.last_failure = ""

    def reset(self, started: float) -> None:
        self.successes = self.failures = 0
        self.next_at = started + self.initial_delay

    def due(self, at: float) -> bool:
        return at >= self.next_at

    def run(self, http: httpx.Client, at: float) -> bool:
        """Probes once; True on success (2xx or 3xx)."""
        self.next_at = at + self.period
        try:
            response = http.get(self.url, timeout=self.timeout)
            ok = 200 <= response.status_code < 400
            if not ok:
                body = " ".join(response.text.split())[:300]
                self.last_failure = (
                    f"HTTP probe failed with statuscode: {response.status_code}: {body}"
                )
        except httpx.HTTPError as exc:
            ok = False
            self.last_failure = f"Get {self.url!r}: {type(exc).__name__}: {exc}"
        if ok:
            self.successes, self.failures = self.successes + 1, 0
        else:
            self.successes, self.failures = 0, self.failures + 1
        return ok


class Container:
    """One container of a running pod: its process, probes and status."""

    def __init__(self, pod: PodRunner, spec: dict[str, Any]) -> None:
        self.pod = pod
        self.spec = spec
        self.name: str = spec["name"]
        ports = {p["name"]: p["containerPort"] for p in spec.get("ports") or [] if "name" in p}
        address = pod.local_address
        self.readiness = (
            Probe(spec["readinessProbe"], ports, address) if spec.get("readinessProbe") else None
        )
        self.liveness = (
            Probe(spec["livenessProbe"], ports, address) if spec.get("livenessProbe") else None
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.ready = False
        self.restarts = 0
        self.started_at: str | None = None
        self.last_exit: dict[str, Any] | None = None
        self.reported_failure = ""
        self.waiting: tuple[str, str] | None = ("ContainerCreating", "")
        self.backoff = BACKOFF_START
        self.restart_at = 0.0
        self.log_path = pod.directory / f"{self.name}.log"
        self.completed: dict[str, Any] | None = None  # an init container that exited 0
        # A container that is not restarted (restartPolicy Never, or OnFailure after exit 0).
        self.terminated: dict[str, Any] | None = None
        self.termination_log = pod.directory / f"{self.name}.termination-log"

    # ---- the process -----------------------------------------------------------------------

    def argv(self, extra: list[str]) -> tuple[list[str], dict[str, str]]:
        entrypoint, image_env = RUNNABLE_IMAGES[image_repository(self.spec["image"])]
        env = {**image_env, **self.pod.container_env(self.spec)}
        expand = _expander(env)
        command = [expand(a) for a in self.spec.get("command") or []] or list(entrypoint)
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable
        args = [expand(a) for a in self.spec.get("args") or []] + extra
        # The file a container leaves its termination message in, this container's own here.
        message_path = self.spec.get("terminationMessagePath") or "/dev/termination-log"
        argv = [
            self.pod.local_arg(a).replace(message_path, str(self.termination_log))
            for a in command + args
        ]
        return argv, env

    def start(self, at: float) -> None:
        # Faults go to the model's container (the one that answers requests) only.
        extra, reasons = (
            self.pod.kubelet.injected_faults(self.pod.pod) if self.name == "model" else ([], [])
        )
        argv, env = self.argv(extra)
        for reason in reasons:
            self.pod.event("Normal", "FaultInjected", reason)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.pod.directory,
                env={"PATH": os.environ.get("PATH", ""), "HOME": str(self.pod.directory), **env},
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.started_at, self.waiting, self.ready = now(), None, False
        for probe in (self.readiness, self.liveness):
            if probe:
                probe.reset(at)
        self.pod.event("Normal", "Started", f"Started container {self.name}: {' '.join(argv)}")

    def stop(self, grace: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def step(self, http: httpx.Client, at: float) -> bool:
        """Starts, restarts and probes; True when anything in the status changed."""
        if self.process is None:
            if at < self.restart_at:
                return False
            self.start(at)
            return True
        code = self.process.poll()
        if code is not None:
            policy = self.pod.pod["spec"].get("restartPolicy") or "Always"
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                self._terminated(code)
            else:
                self._exited(code, at, f"exited with code {code}")
            return True
        if self._liveness_failed(http, at):
            self.pod.event("Normal", "Killing", f"Container {self.name} failed liveness probe")
            self.stop(grace=10)
            self._exited(self.process.returncode, at, "failed its liveness probe")
            return True
        return self._probe_readiness(http, at)

    def _probe_readiness(self, http: httpx.Client, at: float) -> bool:
        probe = self.readiness
        if probe is None:
            was, self.ready = self.ready, True
            return not was
        if not probe.due(at):
            return False
        if probe.run(http, at):
            if not self.ready and probe.successes >= probe.success_threshold:
                self.ready = True
                return True
            return False
        if probe.last_failure != self.reported_failure:  # one Event per reason
            self.reported_failure = probe.last_failure
            self.pod.event("Warning", "Unhealthy", f"Readiness probe failed: {probe.last_failure}")
        if self.ready and probe.failures >= probe.failure_threshold:
            self.ready = False
            return True
        return False

    def _liveness_failed(self, http: httpx.Client, at: float) -> bool:
        probe = self.liveness
        if probe is None or not probe.due(at) or probe.run(http, at):
            return False
        self.pod.event("Warning", "Unhealthy", f"Liveness probe failed: {probe.last_failure}")
        return probe.failures >= probe.failure_threshold

    def _exited(self, code: int | None, at: float, why: str) -> None:
        self.last_exit = {"exitCode": code if code is not None else -1, "finishedAt": now()}
        if self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            self.last_exit["message"] = self.log_tail()
        self.process, self.ready = None, False
        self.restarts += 1
        self.restart_at = at + self.backoff
        message = f"back-off {self.backoff:.0f}s restarting container {self.name}: {why}"
        self.waiting = ("CrashLoopBackOff", message)
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        self.pod.event("Warning", "BackOff", message)

    def _terminated(self, code: int) -> None:
        """Exited for good: its exit and termination message, as a kubelet reports them (the
        file's contents, or the log's last lines for a failure with FallbackToLogsOnError)."""
        try:
            message = self.termination_log.read_text(errors="replace")[-4096:]
        except OSError:
            message = ""
        fallback = self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"
        if not message and code != 0 and fallback:
            message = self.log_tail()[-2048:]
        self.terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": self.started_at,
            "finishedAt": now(),
        }
        if message:
            self.terminated["message"] = message
        self.process, self.ready = None, False
        self.pod.event("Normal", "Terminated", f"container {self.name} exited with code {code}")

    def initializing(self) -> dict[str, Any]:
        """A container's status while the pod's init containers run."""
        return {
            "name": self.name,
            "image": self.spec["image"],
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "state": {"waiting": {"reason": "PodInitializing"}},
        }

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def run_to_completion(self, terminate: threading.Event) -> bool:
        """An init container: runs until it exits; True when it exited 0 (Completed). A failure
        leaves it waiting in CrashLoopBackOff, to be run again after the back-off."""
        self.start(time.monotonic())
        assert self.process is not None
        while self.process.poll() is None:
            if terminate.wait(TICK):
                self.stop(grace=5)
                return False
        code = self.process.returncode
        if code == 0:
            self.completed = {"exitCode": 0, "reason": "Completed", "finishedAt": now()}
            self.process, self.waiting = None, None
            return True
        self._exited(code, time.monotonic(), f"exited with code {code}")
        return False

    def status(self) -> dict[str, Any]:
        if self.completed:
            return {
                "name": self.name,
                "image": self.spec["image"],
                "imageID": "",
                "ready": True,
                "restartCount": self.restarts,
                "state": {"terminated": {**self.completed, "startedAt": self.started_at}},
            }
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.spec["image"],
            "imageID": "",
            "ready": self.ready,
            "started": self.process is not None,
            "restartCount": self.restarts,
        }
        if self.terminated:
            status["state"] = {"terminated": self.terminated}
        elif self.waiting:
            reason, message = self.waiting
            status["state"] = {"waiting": {"reason": reason, "message": message}}
        else:
            status["state"] = {"running": {"startedAt": self.started_at}}
        if self.last_exit:
            status["lastState"] = {"terminated": {"reason": "Error", **self.last_exit}}
        return status


class PodRunner(threading.Thread):
    def __init__(self, kubelet: LocalKubelet, pod: dict[str, Any], pod_ip: str) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod {meta['namespace']}/{meta['name']}", daemon=True)
        self.kubelet = kubelet
        self.pod = pod
        self.namespace, self.pod_name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.pod_ip = pod_ip
        self.local_address = local_address(pod_ip)
        self.directory = kubelet.workdir / "pods" / f"{self.namespace}_{self.pod_name}"
        self.mounts: dict[str, Path] = {}
        self.containers: list[Container] = []
        self.inits: list[Container] = []
        self.terminate = threading.Event()
        self.started = now()
        self.transitions: dict[str, tuple[bool, str]] = {}
        self._events: dict[tuple[str, str], dict[str, Any]] = {}

    # ---- what the containers see ----------------------------------------------------------

    def container_env(self, spec: dict[str, Any]) -> dict[str, str]:
        fields = {
            "status.podIP": self.local_address,
            "metadata.name": self.pod_name,
            "metadata.namespace": self.namespace,
            "spec.nodeName": self.pod["spec"].get("nodeName", ""),
        }
        env: dict[str, str] = {}
        for var in spec.get("env") or []:
            if "value" in var:
                value = _expander(env)(var["value"])
                env[var["name"]] = self.kubelet.services.resolve(value, self.namespace)
            elif path := ((var.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath"):
                env[var["name"]] = fields.get(path, "")
        return env

    def local_arg(self, arg: str) -> str:
        """A mount path becomes its local directory; the wildcard address (a server listening
        in its own network namespace) and the pod's loopback (a container calling another of
        the same pod) become the pod's own address."""
        flag, sep, value = arg.partition("=") if arg.startswith("-") else ("", "", arg)
        if value in ("0.0.0.0", "::"):
            value = self.local_address
        for loopback in ("://127.0.0.1:", "://localhost:"):
            value = value.replace(loopback, f"://{self.local_address}:")
        value = self.kubelet.services.resolve(value, self.namespace)
        # A path may follow a name, as in vLLM's --lora-modules=NAME=PATH.
        name, equals, path = value.rpartition("=") if value.count("=") == 1 else ("", "", value)
        for mount_path, local in sorted(self.mounts.items(), key=lambda m: -len(m[0])):
            if path == mount_path or path.startswith(mount_path.rstrip("/") + "/"):
                path = str(local) + path[len(mount_path.rstrip("/")) :]
                break
        return f"{flag}{sep}{name}{equals}{path}"

    # ---- lifecycle ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._mount_volumes()
            if self.terminate.is_set():
                return self._finish()
            self.inits = [Container(self, c) for c in self.pod["spec"].get("initContainers") or []]
            self.containers = [Container(self, c) for c in self.pod["spec"]["containers"]]
            if not self._initialize():
                return self._finish()
            self._write_status()
            with httpx.Client() as http:
                while not self.terminate.is_set():
                    at = time.monotonic()
                    changed = False
                    for container in self.containers:
                        if not container.terminated:
                            changed |= container.step(http, at)
                    if changed:
                        self._write_status()
                    self.terminate.wait(TICK)  # an ended pod stays until it is deleted
        except Exception:
            log.exception("%s failed", self.name)
        self._finish()

    def _initialize(self) -> bool:
        """Runs the init containers in order, each to completion, a failed one again after its
        back-off, as a kubelet does; False if the pod goes away first."""
        for init in self.inits:
            while not init.completed:
                self._write_status()
                if init.run_to_completion(self.terminate):
                    break
                self._write_status()
                if self.terminate.wait(max(init.restart_at - time.monotonic(), 0)):
                    return False
        return not self.terminate.is_set()

    def _finish(self) -> None:
        grace = float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))
        for container in self.containers:
            container.stop(min(grace, 30.0))
        if self.kubelet.stopping.is_set():
            return  # the kubelet stops, the pods stay (a node restart)
        if self.pod["metadata"].get("deletionTimestamp"):
            self.kubelet.remove(self.pod)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _mount_volumes(self) -> None:
        """Writes out each volume, retrying (with a FailedMount Event) until all are there."""
        while not self.terminate.is_set():
            try:
                self.mounts = PodVolumes(self.kubelet.core, self.pod, self.directory).mount()
                return
            except LookupError as exc:
                self.event("Warning", "FailedMount", f"MountVolume.SetUp failed for {exc}")
                self.terminate.wait(2)

    # ---- status and events -------------------------------------------------------------------

    def _condition(self, kind: str, ok: bool, reason: str = "", message: str = "") -> dict:
        previous = self.transitions.get(kind)
        if previous is None or previous[0] != ok:
            self.transitions[kind] = (ok, now())
        condition = {
            "type": kind,
            "status": "True" if ok else "False",
            "lastTransitionTime": self.transitions[kind][1],
        }
        if not ok and reason:
            condition.update(reason=reason, message=message)
        return condition

    def _write_status(self) -> None:
        initializing = [c.name for c in self.inits if not c.completed]
        unready = [c.name for c in self.containers if not c.ready]
        message = f"containers with unready status: [{' '.join(unready)}]"
        init_message = f"containers with incomplete status: [{' '.join(initializing)}]"
        phase = "Pending" if initializing else "Running"
        if self.containers and all(c.terminated for c in self.containers):
            failed = any(c.terminated and c.terminated["exitCode"] != 0 for c in self.containers)
            phase = "Failed" if failed else "Succeeded"
            message = "the pod's containers have ended"
        status = {
            "phase": phase,
            "hostIP": NODE_IP,
            "hostIPs": [{"ip": NODE_IP}],
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.started,
            "conditions": [
                self._condition("PodReadyToStartContainers", True),
                self._condition(
                    "Initialized", not initializing, "ContainersNotInitialized", init_message
                ),
                self._condition("ContainersReady", not unready, "ContainersNotReady", message),
                self._condition("Ready", not unready, "ContainersNotReady", message),
            ],
            "containerStatuses": [
                c.status() if not initializing else c.initializing() for c in self.containers
            ],
        }
        if self.inits:
            status["initContainerStatuses"] = [c.status() for c in self.inits]
        try:
            self.kubelet.core.patch_namespaced_pod_status(
                self.pod_name, self.namespace, {"status": status}
            )
        except ApiException as exc:
            if exc.status != 404:
                log.warning("%s: status not written: %s", self.name, exc.reason)

    def event(self, kind: str, reason: str, message: str) -> None:
        """An Event on the pod; a repeat of the same reason and message counts up."""
        key = (reason, message)
        stamp = now()
        log.info("%s: %s %s", self.name, reason, message)
        try:
            existing = self._events.get(key)
            if existing is not None:
                existing["count"] += 1
                existing["lastTimestamp"] = stamp
                self.kubelet.core.patch_namespaced_event(
                    existing["metadata"]["name"],
                    self.namespace,
                    {"count": existing["count"], "lastTimestamp": stamp},
                )
                return
            body = {
                "metadata": {"name": f"{self.pod_name}.{uuid.uuid4().hex[:12]}"},
                "involvedObject": {
                    "kind": "Pod",
                    "apiVersion": "v1",
                    "namespace": self.namespace,
                    "name": self.pod_name,
                    "uid": self.uid,
                },
                "reason": reason,
                "message": message[:1024],
                "type": kind,
                "source": {"component": COMPONENT, "host": self.pod["spec"].get("nodeName")},
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            }
            self.kubelet.core.create_namespaced_event(self.namespace, body)
            self._events[key] = body
        except ApiException as exc:
            log.warning("%s: event %s not written: %s", self.name, reason, exc.reason)


class ServiceAddresses:
    """Stands in for cluster DNS and kube-proxy, which the local platform has neither of: a
    Service URL in a container's arguments or environment (http://NAME.NAMESPACE.svc:PORT, the
    eval Job's target) becomes one of its ready endpoints' local address and target port, as
    the EndpointSlice controller lists them when the container starts."""

    URL = re.compile(r"://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?:(\d+)")

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.discovery = client.DiscoveryV1Api(api)

    def resolve(self, text: str, namespace: str) -> str:
        return self.URL.sub(lambda m: self._address(m, namespace), text)

    def _address(self, match: re.Match[str], default_namespace: str) -> str:
        name, namespace, port = match.group(1), match.group(2) or default_namespace, match.group(3)
        try:
            service = self.core.read_namespaced_service(name, namespace)
            wanted = next((p.name for p in service.spec.ports or [] if str(p.port) == port), None)
            slices = self.discovery.list_namespaced_endpoint_slice(
                namespace, label_selector=f"kubernetes.io/service-name={name}"
            ).items
        except ApiException as exc:
            log.warning("service %s/%s not resolved: %s", namespace, name, exc.reason)
            return match.group(0)
        for found in slices:
            number = next(
                (p.port for p in found.ports or [] if wanted is None or p.name == wanted), None
            )
            for endpoint in found.endpoints or []:
                ready = endpoint.conditions is None or endpoint.conditions.ready is not False
                if ready and endpoint.addresses and number and is_pod_ip(endpoint.addresses[0]):
                    return f"://{local_address(endpoint.addresses[0])}:{number}"
        log.warning("service %s/%s has no ready endpoint", namespace, name)
        return match.group(0)


class LocalKubelet:
    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        self.api = config.new_client_from_config(config_file=str(kubeconfig))
        self.core = client.CoreV1Api(self.api)
        self.workdir = workdir
        self.runners: dict[str, PodRunner] = {}
        self.addresses: set[str] = set()
        self.stopping = threading.Event()
        self._free = iter(pod_ips())
        self.services = ServiceAddresses(self.api)

    def run(self) -> None:
        """Until stop(): watches pods in a thread of its own (a watch blocks), then stops every
        container it runs and leaves the pods as they are, as a kubelet going down does."""
        threading.Thread(target=self._watch, name="watch", daemon=True).start()
        self.stopping.wait()
        for runner in list(self.runners.values()):
            runner.terminate.set()
        for runner in list(self.runners.values()):
            runner.join(timeout=40)

    def stop(self, *_: object) -> None:
        self.stopping.set()

    def _watch(self) -> None:
        """List once, then watch on from the last resourceVersion seen; list again only when
        the watch expired (410) or broke (an apiserver restart in some tests)."""
        version: str | None = None
        while not self.stopping.is_set():
            try:
                version = version or self._list()
                version = self._follow(version)
            except Exception as exc:
                log.warning("watch ended: %s; listing again", exc)
                version = None
                self.stopping.wait(1)

    def _list(self) -> str:
        listed = json.loads(self.core.list_pod_for_all_namespaces(_preload_content=False).data)
        present = {p["metadata"]["uid"] for p in listed["items"]}
        for uid in set(self.runners) - present:
            self._gone(uid)
        for pod in listed["items"]:
            self._seen(pod)
        return listed["metadata"]["resourceVersion"]

    def _follow(self, version: str) -> str | None:
        """Handles pod events until the watch times out; the version to go on from, or None
        to list again."""
        stream = watch.Watch().stream(
            self.core.list_pod_for_all_namespaces,
            resource_version=version,
            timeout_seconds=60,
            allow_watch_bookmarks=True,
        )
        for event in stream:
            if self.stopping.is_set():
                break
            pod = event["raw_object"]
            if event["type"] == "ERROR":
                return None  # expired
            version = pod["metadata"]["resourceVersion"]
            if event["type"] == "DELETED":
                self._gone(pod["metadata"]["uid"])
            elif event["type"] in ("ADDED", "MODIFIED"):
                self._seen(pod)
        return version

    def _seen(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        ip = (pod.get("status") or {}).get("podIP")
        ip = ip if ip and is_pod_ip(ip) else None  # an address of this kubelet's network
        if ip:
            self.addresses.add(ip)
        runner = self.runners.get(uid)
        if runner is not None:
            runner.pod = pod
            if pod["metadata"].get("deletionTimestamp"):
                runner.terminate.set()
            return
        if not pod["spec"].get("nodeName") or not runnable(pod):
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            if pod["metadata"].get("deletionTimestamp"):
                self.remove(pod)  # ended before this kubelet started: nothing to stop
            return
        if pod["metadata"].get("deletionTimestamp") and not ip:
            self.remove(pod)  # never started: nothing to stop
            return
        runner = PodRunner(self, pod, ip or self._allocate())
        self.runners[uid] = runner
        if pod["metadata"].get("deletionTimestamp"):
            runner.terminate.set()
        runner.start()

    def remove(self, pod: dict[str, Any]) -> None:
        """The kubelet's last word on a deleted pod: remove it now (this uid only)."""
        meta = pod["metadata"]
        with contextlib.suppress(ApiException):  # already gone
            self.core.delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                grace_period_seconds=0,
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
            )

    def _gone(self, uid: str) -> None:
        runner = self.runners.pop(uid, None)
        if runner is not None:
            runner.terminate.set()
            self.addresses.discard(runner.pod_ip)

    def _allocate(self) -> str:
        for address in self._free:
            if address not in self.addresses:
                self.addresses.add(address)
                return address
        raise RuntimeError(f"the local pod network {POD_NETWORK} is full")

    def injected_faults(self, pod: dict[str, Any]) -> tuple[list[str], list[str]]:
        """Extra arguments for a starting pod's containers from kube-system/local-kubelet-faults:
        each entry is JSON {"namespace": ..., "labels": {...}, "args": [...]}."""
        try:
            faults = self.core.read_namespaced_config_map(FAULTS[1], FAULTS[0]).data or {}
        except ApiException:
            return [], []
        labels = pod["metadata"].get("labels") or {}
        args: list[str] = []
        reasons: list[str] = []
        for name, raw in sorted(faults.items()):
            entry = json.loads(raw)
            if entry.get("namespace") not in (None, pod["metadata"]["namespace"]):
                continue
            if all(labels.get(k) == v for k, v in (entry.get("labels") or {}).items()):
                args += entry["args"]
                reasons.append(
                    f"fault {name} injected by the local kubelet: {' '.join(entry['args'])}"
                )
        return args, reasons


_VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _expander(env: dict[str, str]):
    """$(NAME) from the container's environment, as the kubelet expands command and args."""
    return lambda text: _VARIABLE.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster.kubelet", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    kubelet = LocalKubelet(args.kubeconfig, args.workdir)
    signal.signal(signal.SIGTERM, kubelet.stop)
    signal.signal(signal.SIGINT, kubelet.stop)
    kubelet.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
