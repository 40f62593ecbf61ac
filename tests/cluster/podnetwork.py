"""The local platform's pod network: where a pod of the local kubelet lives and how it is reached.

The apiserver refuses loopback addresses in EndpointSlices, Endpoints ("may not be in the
loopback range") and its proxy, so pod IPs cannot be 127.x as a real pod's address. Instead
each pod gets an address in POD_NETWORK (198.18.0.0/15, reserved for benchmarking networks and
never routed), which is what the pod's status, its EndpointSlices and Prometheus' discovery show;
its server listens on the loopback address with the same last two octets in LOOPBACK_NETWORK.
Nothing ever connects to a 198.18 address: every client of the platform (the gateway stand-in,
Prometheus' relabeling below, tests) maps the pod IP to its loopback address first, as a
cluster's pod network would route it."""

from __future__ import annotations

import ipaddress

NODE_IP = "10.240.0.1"  # the fake nodes' address (KWOK's --node-ip), a pod's hostIP; never dialled
POD_NETWORK = ipaddress.IPv4Network("198.18.0.0/16")
LOOPBACK_NETWORK = ipaddress.IPv4Network("127.18.0.0/16")


def is_pod_ip(address: str) -> bool:
    try:
        return ipaddress.IPv4Address(address) in POD_NETWORK
    except ValueError:
        return False


def local_address(pod_ip: str) -> str:
    """The loopback address a pod IP of this network is reached at."""
    address = ipaddress.IPv4Address(pod_ip)
    if address not in POD_NETWORK:
        raise ValueError(
            f"{pod_ip} is not in the local pod network {POD_NETWORK}: no local process serves it"
        )
    offset = int(address) - int(POD_NETWORK.network_address)
    return str(LOOPBACK_NETWORK.network_address + offset)


def pod_ips() -> list[str]:
    """Addresses a pod can get: the network without .0 and .255 in each /24, for readability."""
    return [str(a) for a in POD_NETWORK.hosts() if a.packed[-1] not in (0, 255)]


# Prometheus relabeling that routes a discovered pod's address (`__address__`, pod IP and port)
# into the loopback network; targets outside the pod network (KWOK's pods, which run nothing)
# are dropped first, so Prometheus never connects anywhere but loopback.
PROMETHEUS_RELABELING = [
    {"source_labels": ["__address__"], "regex": r"198\.18\.\d+\.\d+:\d+", "action": "keep"},
    {
        "source_labels": ["__address__"],
        "regex": r"198\.18\.(\d+)\.(\d+):(\d+)",
        "replacement": "127.18.$1.$2:$3",
        "target_label": "__address__",
    },
]
