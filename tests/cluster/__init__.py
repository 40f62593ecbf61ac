"""The local test platform: a real control plane (etcd, kube-apiserver, controller-manager,
scheduler, KWOK) and Prometheus, on 127.0.0.1. See README.md beside this file."""
