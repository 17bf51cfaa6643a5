#!/usr/bin/env bash
# Installs the pinned test control-plane tools (kube-apiserver, kubectl, etcd, helm, promtool,
# vault, prometheus), the chart checkers (kubeconform, kube-score) and the test node's components (kubelet,
# kube-controller-manager, kube-scheduler, kube-proxy, CoreDNS, a pause binary; see tools/node)
# into a cache outside the work tree, so tests run against real binaries.
#
# Usage: tools/envtest/install.sh [--force] [--print-env]
#   --force      rebuild every tool even when the cache is warm
#   --print-env  print only the env file path on stdout (for scripts)
#
# Cache: ${PARLEY_TOOLS_DIR:-$HOME/.cache/parley/tools}/<name>-<version>/<name>
# Env file read by testing/parley_testing/envtest_tools.py: $TOOLS_DIR/envtest.env
set -euo pipefail

# ---- pinned versions (wrapper go.mod files must agree; checked below) -------------------
KUBE_VERSION=v1.37.2          # k8s.io/kubernetes, staging modules at v0.37.2
ETCD_VERSION=v3.7.0           # the etcd Kubernetes v1.37 tests against (hack/lib/etcd.sh)
HELM_MODULE=helm.sh/helm/v3
HELM_VERSION=v3.22.0
PROMETHEUS_MODULE_VERSION=v0.316.0   # Go module version of Prometheus v3.16.0
PROMTOOL_VERSION=v3.16.0
VAULT_VERSION=v1.21.1         # github.com/hashicorp/vault: the newest release that builds with published sdk tags
VAULT_BUILD_DATE=2025-11-18T21:04:32Z   # the tag's commit time: Vault's plugin environment needs a build date
KUBECONFORM_VERSION=v0.8.0   # github.com/yannh/kubeconform (needs go 1.26)
KUBE_SCORE_VERSION=v1.20.0    # github.com/zegl/kube-score
COREDNS_VERSION=v1.15.0       # github.com/coredns/coredns: the test node's cluster DNS
GO_MIN=1.26.7                 # k8s v1.37 needs go 1.26; prometheus v0.316.0 needs 1.26.7

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS_DIR="${PARLEY_TOOLS_DIR:-${HOME}/.cache/parley/tools}"
ENV_FILE="${TOOLS_DIR}/envtest.env"
FORCE=0
PRINT_ENV=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --print-env) PRINT_ENV=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "envtest: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "envtest: error: $*" >&2; exit 1; }
log() { if [[ $PRINT_ENV -eq 0 ]]; then echo "envtest: $*"; else echo "envtest: $*" >&2; fi; }

# The wrapper modules pin the same versions as this script; refuse to build a mismatch.
grep -q "k8s.io/kubernetes ${KUBE_VERSION}\$" "$HERE/kube/go.mod" \
  || die "tools/envtest/kube/go.mod does not require k8s.io/kubernetes ${KUBE_VERSION}"
grep -q "go.etcd.io/etcd/server/v3 ${ETCD_VERSION}\$" "$HERE/etcd/go.mod" \
  || die "tools/envtest/etcd/go.mod does not require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}"
grep -q "github.com/hashicorp/vault ${VAULT_VERSION}\$" "$HERE/vault/go.mod" \
  || die "tools/envtest/vault/go.mod does not require github.com/hashicorp/vault ${VAULT_VERSION}"

GO_BIN=""
find_go() {
  [[ -n "$GO_BIN" ]] && return 0
  GO_BIN="${GO:-$(command -v go || true)}"
  [[ -z "$GO_BIN" && -x /usr/local/go/bin/go ]] && GO_BIN=/usr/local/go/bin/go
  [[ -n "$GO_BIN" && -x "$GO_BIN" ]] \
    || die "Go toolchain not found (need go >= ${GO_MIN} on PATH, in \$GO or at /usr/local/go/bin/go)"
  local have
  have="$("$GO_BIN" env GOVERSION)"; have="${have#go}"   # e.g. 1.26.8
  [[ "$(printf '%s\n%s\n' "$GO_MIN" "$have" | sort -V | head -n1)" == "$GO_MIN" ]] \
    || die "Go ${have} at ${GO_BIN} is too old: the pinned tools need go >= ${GO_MIN}"
  # GOGC=400: the compiler collects garbage a quarter as often (under 1 GB per compile); a cold build of
  # helm took 91-105 s instead of 100-124 s (docs/development.md, measured build times).
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOGC="${GOGC:-400}"
}

# Explains a failed `go` command in one line: network vs. build problem.
explain_failure() { # <what> <logfile>
  local what="$1" logf="$2"
  if grep -qE 'dial tcp|no such host|i/o timeout|connection refused|TLS handshake|proxyconnect|unexpected EOF|: 40[34] |Forbidden|network is unreachable' "$logf"; then
    die "cannot download Go modules for ${what} from the module proxy ($("$GO_BIN" env GOPROXY)); is it reachable? log: ${logf}"
  fi
  die "building ${what} failed: $(grep -m1 -vE '^go: (downloading|finding)' "$logf" || true) (full log: ${logf})"
}

hash_inputs() { # short hash of the arguments: a file counts by content (not path), anything else as text
  local a
  for a in "$@"; do
    if [[ -f "$a" ]]; then cat "$a"; else printf '%s\n' "$a"; fi
  done | sha256sum | cut -c1-16
}

ENV_LINES=()
SUMMARY=()
BUILD_TMP=""   # half-built tool directory, removed if the script stops early
trap 'if [[ -n "$BUILD_TMP" ]]; then rm -rf "$BUILD_TMP"; fi' EXIT

# install_tool <name> <version> <env-var> <stamp-inputs...> -- <build command...>
# The build command must write the binary to $OUT (a temporary directory).
install_tool() {
  local name="$1" version="$2" var="$3"; shift 3
  local inputs=()
  while [[ "$1" != "--" ]]; do inputs+=("$1"); shift; done
  shift
  local dir="${TOOLS_DIR}/${name}-${version}"
  local bin="${dir}/${name}" stamp="${dir}/.stamp"
  local want; want="$(hash_inputs "$name" "$version" "${inputs[@]}")"
  if [[ $FORCE -eq 0 && -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    SUMMARY+=("$(printf '%-15s %-8s %s (cached)' "$name" "$version" "$bin")")
  else
    find_go
    log "building ${name} ${version} (this can take minutes on a cold cache) ..."
    local tmp; tmp="$(mktemp -d "${TOOLS_DIR}/.${name}-${version}.XXXXXX")"
    BUILD_TMP="$tmp"
    local logf="${TOOLS_DIR}/.${name}-${version}.log"
    local start=$SECONDS
    if ! OUT="$tmp" "$@" >"$logf" 2>&1; then
      rm -rf "$tmp"
      explain_failure "${name} ${version}" "$logf"
    fi
    [[ -x "${tmp}/${name}" ]] || { rm -rf "$tmp"; die "build of ${name} produced no binary (log: ${logf})"; }
    printf '%s\n' "$want" >"${tmp}/.stamp"
    rm -rf "$dir"
    mv "$tmp" "$dir"
    BUILD_TMP=""
    chmod 0755 "$dir"
    rm -f "$logf"
    SUMMARY+=("$(printf '%-15s %-8s %s (built in %ss)' "$name" "$version" "$bin" "$((SECONDS - start))")")
  fi
  ENV_LINES+=("${var}=${bin}")
}

# ---- build recipes (run with OUT set, cwd is arbitrary) ---------------------------------
kube_ldflags() {
  local major="${KUBE_VERSION#v}"; major="${major%%.*}"
  local minor="${KUBE_VERSION#v*.}"; minor="${minor%%.*}"
  local ld="-s -w" p
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X ${p}.gitVersion=${KUBE_VERSION} -X ${p}.gitMajor=${major} -X ${p}.gitMinor=${minor} -X ${p}.gitTreeState=clean"
  done
  echo "$ld"
}
build_kube() { # <cmd-name>
  (cd "$HERE/kube" && "$GO_BIN" build -trimpath -ldflags "$(kube_ldflags)" -o "$OUT/$1" "./cmd/$1")
}
build_etcd() {
  (cd "$HERE/etcd" && "$GO_BIN" build -trimpath \
    -ldflags "-s -w" -o "$OUT/etcd" .)
}
build_vault() {
  # Upstream's release build sets the same BuildDate; the version comes from the embedded VERSION file.
  (cd "$HERE/vault" && "$GO_BIN" build -trimpath \
    -ldflags "-s -w -X github.com/hashicorp/vault/version.BuildDate=${VAULT_BUILD_DATE}" -o "$OUT/vault" .)
}
build_helm() {
  # Helm's Makefile stamps the Kubernetes version it reports as .Capabilities.KubeVersion
  # from its client-go (v0.N.M -> 1.N); without it `helm template` claims v1.20.
  local gomod client_go major minor
  gomod="$("$GO_BIN" mod download -json "${HELM_MODULE}@${HELM_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  client_go="$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$gomod")"
  [[ "$client_go" =~ ^v0\.([0-9]+)\. ]] || { echo "cannot find k8s.io/client-go in $gomod"; return 1; }
  major=1 minor="${BASH_REMATCH[1]}"
  local v="${HELM_MODULE}/internal/version"
  GOBIN="$OUT" "$GO_BIN" install -trimpath -ldflags "-s -w \
    -X ${v}.version=${HELM_VERSION} -X ${v}.metadata= -X ${v}.gitTreeState=clean \
    -X ${HELM_MODULE}/pkg/lint/rules.k8sVersionMajor=${major} -X ${HELM_MODULE}/pkg/lint/rules.k8sVersionMinor=${minor} \
    -X ${HELM_MODULE}/pkg/chartutil.k8sVersionMajor=${major} -X ${HELM_MODULE}/pkg/chartutil.k8sVersionMinor=${minor}" \
    "${HELM_MODULE}/cmd/helm@${HELM_VERSION}"
}
build_promtool() {
  GOBIN="$OUT" "$GO_BIN" install -trimpath -tags netgo -ldflags "-s -w \
    -X github.com/prometheus/common/version.Version=${PROMTOOL_VERSION#v} \
    -X github.com/prometheus/common/version.Branch=HEAD" \
    "github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_MODULE_VERSION}"
}
build_prometheus() {
  # The suite's Prometheus (tests/cluster): Debian's package is built without Kubernetes discovery.
  GOBIN="$OUT" "$GO_BIN" install -trimpath -tags netgo -ldflags "-s -w \
    -X github.com/prometheus/common/version.Version=${PROMTOOL_VERSION#v} \
    -X github.com/prometheus/common/version.Branch=HEAD" \
    "github.com/prometheus/prometheus/cmd/prometheus@${PROMETHEUS_MODULE_VERSION}"
}
build_kubeconform() {
  GOBIN="$OUT" "$GO_BIN" install -trimpath -ldflags "-s -w -X main.version=${KUBECONFORM_VERSION#v}" \
    "github.com/yannh/kubeconform/cmd/kubeconform@${KUBECONFORM_VERSION}"
}
build_coredns() {
  GOBIN="$OUT" "$GO_BIN" install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@${COREDNS_VERSION}"
}
build_kube_score() {
  GOBIN="$OUT" "$GO_BIN" install -trimpath -ldflags "-s -w -X main.version=${KUBE_SCORE_VERSION#v}" \
    "github.com/zegl/kube-score/cmd/kube-score@${KUBE_SCORE_VERSION}"
}

# ---- main ---------------------------------------------------------------------------------
mkdir -p "$TOOLS_DIR" || die "cannot create tools cache ${TOOLS_DIR} (set PARLEY_TOOLS_DIR)"
exec 9>"${TOOLS_DIR}/.lock"
flock 9 || die "cannot lock ${TOOLS_DIR}/.lock"

# Stamp inputs: the wrapper module files plus the recipe's own source (`declare -f`), so
# editing a pin, a go.sum or a build flag rebuilds exactly the affected tools.
KUBE_INPUTS=("$HERE/kube/go.mod" "$HERE/kube/go.sum" "$(declare -f build_kube kube_ldflags)")
install_tool kube-apiserver "$KUBE_VERSION" PARLEY_KUBE_APISERVER \
  "${KUBE_INPUTS[@]}" "$HERE/kube/cmd/kube-apiserver/main.go" -- build_kube kube-apiserver
install_tool kubectl "$KUBE_VERSION" PARLEY_KUBECTL \
  "${KUBE_INPUTS[@]}" "$HERE/kube/cmd/kubectl/main.go" -- build_kube kubectl
# The test node's components (tools/node), from the same module set as the API server.
for component in kubelet kube-controller-manager kube-scheduler kube-proxy pause; do
  var="PARLEY_$(echo "$component" | tr 'a-z-' 'A-Z_')"
  install_tool "$component" "$KUBE_VERSION" "$var" \
    "${KUBE_INPUTS[@]}" "$HERE/kube/cmd/$component/main.go" -- build_kube "$component"
done
install_tool coredns "$COREDNS_VERSION" PARLEY_COREDNS \
  "$(declare -f build_coredns)" -- build_coredns
install_tool etcd "$ETCD_VERSION" PARLEY_ETCD \
  "$HERE/etcd/go.mod" "$HERE/etcd/go.sum" "$HERE/etcd/main.go" "$(declare -f build_etcd)" \
  -- build_etcd
install_tool helm "$HELM_VERSION" PARLEY_HELM \
  "$HELM_MODULE" "$(declare -f build_helm)" -- build_helm
install_tool promtool "$PROMTOOL_VERSION" PARLEY_PROMTOOL \
  "$PROMETHEUS_MODULE_VERSION" "$(declare -f build_promtool)" -- build_promtool
install_tool prometheus "$PROMTOOL_VERSION" PARLEY_PROMETHEUS \
  "$PROMETHEUS_MODULE_VERSION" "$(declare -f build_prometheus)" -- build_prometheus
install_tool vault "$VAULT_VERSION" PARLEY_VAULT \
  "$HERE/vault/go.mod" "$HERE/vault/go.sum" "$HERE/vault/main.go" "$VAULT_BUILD_DATE" \
  "$(declare -f build_vault)" -- build_vault
install_tool kubeconform "$KUBECONFORM_VERSION" PARLEY_KUBECONFORM \
  "$(declare -f build_kubeconform)" -- build_kubeconform
install_tool kube-score "$KUBE_SCORE_VERSION" PARLEY_KUBE_SCORE \
  "$(declare -f build_kube_score)" -- build_kube_score

tmp_env="$(mktemp "${ENV_FILE}.XXXXXX")"
{
  echo "# Written by tools/envtest/install.sh; read by testing/parley_testing/envtest_tools.py."
  printf '%s\n' "${ENV_LINES[@]}"
  echo "PARLEY_KUBE_VERSION=${KUBE_VERSION}"
} >"$tmp_env"
chmod 0644 "$tmp_env"
mv "$tmp_env" "$ENV_FILE"

if [[ $PRINT_ENV -eq 1 ]]; then
  echo "$ENV_FILE"
else
  printf '  %s\n' "${SUMMARY[@]}"
  echo "envtest: tool paths written to ${ENV_FILE}"
fi
