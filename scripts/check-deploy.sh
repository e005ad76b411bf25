#!/usr/bin/env bash
# Checks the deployment files offline, without a cluster or a Docker engine:
#
#   - every kustomize overlay under deploy/k8s/overlays renders
#     (`kubectl kustomize`), validates against the Kubernetes API schemas
#     (kubernetes-validate, strict: unknown fields are errors) and passes the
#     checkov scan;
#   - the Dockerfiles and the GitHub Actions workflows pass checkov;
#   - docker-compose.yml validates against the Compose specification's schema
#     and the workflows against GitHub's workflow schema (check-jsonschema).
#
# The tools live in a virtualenv under target/, made on the first run and
# reused after. The rendered manifests are left in target/deploy-check/.
# Without kubectl (it carries kustomize) the Kubernetes part is skipped with
# a notice; everything else still runs.
#
# checkov skip list, for every overlay (README.md, "Deployment"):
#   CKV_K8S_43  images by digest: the deploy workflow pins orderflow's own
#               images by digest; the third-party images (nats, postgres) are
#               pinned by version tag.
#   CKV_K8S_35  secrets as files: the services read their settings, secrets
#               included, from the environment.
# Individual resources may carry their own `checkov.io/skip` annotation with
# the reason beside it (the local overlay's locally loaded images do).
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE_VERSION=1.37.0
CHECKOV_VERSION=3.3.30
CHECK_JSONSCHEMA_VERSION=0.39.0
# The oldest Kubernetes release the manifests must be valid for.
KUBERNETES_VERSION=${DEPLOY_CHECK_KUBERNETES_VERSION:-1.30.0}
CHECKOV_SKIPS=CKV_K8S_43,CKV_K8S_35
VENV=target/deploy-tools
OUT=target/deploy-check

log() { printf '[check-deploy] %s\n' "$*" >&2; }

command -v python3 >/dev/null || { log "python3 is needed"; exit 1; }

wanted="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION checkov==$CHECKOV_VERSION check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$wanted" ]; then
  log "installing $wanted into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  # shellcheck disable=SC2086 # one argument per requirement
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $wanted
  echo "$wanted" > "$VENV/.installed"
fi

checkov() {
  # --skip-download: no network lookups of check metadata.
  "$VENV/bin/checkov" --quiet --compact --skip-download --skip-check "$CHECKOV_SKIPS" "$@"
}

failed=0
run() {
  local what=$1
  shift
  if "$@"; then
    log "ok: $what"
  else
    log "FAILED: $what"
    failed=1
  fi
}

mkdir -p "$OUT"

run "docker-compose.yml against the Compose specification" \
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml

workflows=(.github/workflows/*.yml)
run "GitHub workflows against GitHub's schema" \
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"
run "checkov: GitHub workflows" checkov --framework github_actions -d .github/workflows
run "checkov: Dockerfiles" checkov --framework dockerfile -d deploy/docker

if command -v kubectl >/dev/null; then
  for overlay in deploy/k8s/overlays/*/; do
    name=$(basename "$overlay")
    rendered="$OUT/$name.yaml"
    if ! kubectl kustomize "$overlay" > "$rendered"; then
      log "FAILED: kubectl kustomize $overlay"
      failed=1
      continue
    fi
    # Custom resources (KEDA's ScaledObject) have no schema here: warned
    # about, not failed; stack-tests/tests/k8s_manifests.rs checks them.
    run "$name: Kubernetes $KUBERNETES_VERSION schemas" \
      "$VENV/bin/kubernetes-validate" --strict --quiet --no-warn -k "$KUBERNETES_VERSION" "$rendered"
    run "$name: checkov" checkov --framework kubernetes -f "$rendered"
  done
else
  log "kubectl not found: Kubernetes overlays not rendered or checked"
fi

exit "$failed"
