#!/usr/bin/env bash
# Makes sure bin/tools/helm is Helm v4.3.2, built from source through the Go
# module proxy (no prebuilt download): the first run compiles it (a few
# minutes on two cores), later runs find it and return at once.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v4.3.2
BIN="$(pwd)/bin/tools"
HELM="$BIN/helm"
GO="${GO:-go}"

if [ -x "$HELM" ] && "$HELM" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
  exit 0
fi

echo "building helm $HELM_VERSION from the Go module proxy into bin/tools (once)…" >&2
mkdir -p "$BIN"
start=$(date +%s)
# The version is stamped the way Helm's own Makefile does it, so `helm version` tells.
GOBIN="$BIN" "$GO" install \
  -ldflags "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
echo "helm $HELM_VERSION built in $(( $(date +%s) - start ))s" >&2
