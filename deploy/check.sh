#!/usr/bin/env bash
# Offline checks of deploy/ (make deploy-check): render every kustomize overlay and example,
# check the containers' env (references, DB4_* names against the flags), validate against the
# Kubernetes schemas, scan the manifests and the Dockerfile with checkov, lint the Dockerfile
# with hadolint and the YAML with yamllint. Needs kubectl, the tools of .venv-deploy and
# the project's db4 command (.venv).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${DEPLOY_VENV:-$here/../.venv-deploy}
bin=$(cd "$venv/bin" && pwd)
command -v kubectl >/dev/null || { echo "deploy-check: kubectl is needed (kustomize)"; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
step() { printf 'deploy-check: %s\n' "$*"; }

for dir in "$here"/k8s/overlays/* "$here"/k8s/examples/*; do
  name=$(basename "$dir")
  kubectl kustomize "$dir" > "$out/$name.yaml"
  step "rendered $name ($(grep -c '^kind:' "$out/$name.yaml") objects)"
done

db4=${DB4:-$here/../.venv/bin/db4}
"$db4" node --help > "$out/node.help"
"$db4" router --help > "$out/router.help"
"$bin/python" "$here/check_env.py" --help-node "$out/node.help" --help-router "$out/router.help" \
  "$out"/*.yaml

# The oldest Kubernetes these manifests are for (native gRPC probes are GA in 1.27) and the
# newest schemas the validator knows.
for version in 1.27.0 1.37.0; do
  "$bin/kubernetes-validate" --strict --quiet --kubernetes-version "$version" "$out"/*.yaml
done
step "kubernetes-validate --strict: 1.27 and 1.37 schemas accept every object"

cp "$here/Dockerfile" "$out/Dockerfile"
"$bin/checkov" --quiet --compact --skip-download --config-file "$here/.checkov.yaml" \
  --directory "$out" --framework kubernetes dockerfile
step "checkov: manifests and Dockerfile pass"

"$bin/hadolint" --failure-threshold error "$here/Dockerfile"
step "hadolint: Dockerfile passes"

"$bin/yamllint" --strict --config-file "$here/.yamllint.yaml" "$here/k8s" \
  "$here/.checkov.yaml" "$here/.yamllint.yaml"
step "yamllint: deploy/k8s passes"
