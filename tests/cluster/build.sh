#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy into a cache outside the repo:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  (tests/cluster/kubernetes)
#   etcd                                                              (tests/cluster/etcd)
#   kwok                                                              (tests/cluster/kwok)
#   prometheus, with only its Kubernetes service discovery            (tests/cluster/prometheus)
# The cache directory is keyed by a hash of the pinning files, so a version bump builds afresh and
# an unchanged tree reuses what is there. Prints the bin directory on the last line of stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION=v1.35.4
key=$(cat "$here"/build.sh "$here"/*/go.mod "$here"/*/go.sum | sha256sum | cut -c1-12)
cache_root="${FTRELEASE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/finetune-release-operator}"
bin="$cache_root/cluster-$key/bin"
log="$cache_root/cluster-$key/build.log"
mkdir -p "$bin"

export CGO_ENABLED=0 GOFLAGS=-mod=mod
minor=$(echo "$K8S_VERSION" | cut -d. -f2)
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"

build() {  # build MODULE_DIR OUTPUT_NAME PACKAGE [LDFLAGS] [TAGS]
  local dir=$1 name=$2 pkg=$3 flags=${4:-"-s -w"} tags=${5:-}
  if [ -x "$bin/$name" ]; then echo "cached: $name" >&2; return; fi
  echo "building $name ($pkg), log: $log" >&2
  local start=$SECONDS
  (cd "$here/$dir" && go build -trimpath -tags "$tags" -ldflags "$flags" -o "$bin/$name.tmp" "$pkg") >>"$log" 2>&1 \
    || { echo "build of $name failed; last lines of $log:" >&2; tail -30 "$log" >&2; exit 1; }
  mv "$bin/$name.tmp" "$bin/$name"
  echo "built $name in $((SECONDS - start))s" >&2
}

build kubernetes kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$ldflags"
build kubernetes kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$ldflags"
build kubernetes kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$ldflags"
build kubernetes kubectl k8s.io/kubernetes/cmd/kubectl "$ldflags"
build etcd etcd go.etcd.io/etcd/server/v3
build kwok kwok sigs.k8s.io/kwok/cmd/kwok
# Debian's prometheus has no Kubernetes service discovery; this one has only that one.
build prometheus prometheus github.com/prometheus/prometheus/cmd/prometheus "-s -w" \
  remove_all_sd,enable_kubernetes_sd

# KWOK >= v0.8 takes its node and pod lifecycle stages as --config files; they ship in its module.
kwok_dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
stages="$bin/../kwok-stages"
rm -rf "$stages" && mkdir -p "$stages"
for dir in node/fast node/heartbeat-with-lease pod/fast; do
  for f in "$kwok_dir/kustomize/stage/$dir"/*.yaml; do
    case "$(basename "$f")" in kustomization.yaml) ;; *) cp "$f" "$stages/";; esac
  done
done
# Gateway API standard-channel CRDs, from the module cache.
(cd "$here/kwok" && go mod download sigs.k8s.io/gateway-api)
gw_dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)
mkdir -p "$bin/../gateway-api"
cp -f "$gw_dir"/config/crd/standard/*.yaml "$bin/../gateway-api/"
# The Prometheus Operator's PodMonitor CRD (manifests/monitoring/ is dry-run against it), likewise.
(cd "$here/kwok" && go mod download github.com/prometheus-operator/prometheus-operator)
po_dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' github.com/prometheus-operator/prometheus-operator)
mkdir -p "$bin/../prometheus-operator"
cp -f "$po_dir"/example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml \
  "$bin/../prometheus-operator/"
echo "$bin"
