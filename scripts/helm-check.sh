#!/usr/bin/env bash
# Lints and renders the Helm chart with each values file in helm/sessiongate/ci/, and checks that the
# chart refuses what it must refuse. Needs `helm` (v3) on PATH; without it, says so and exits 0 so
# that test/packaging/chart.test.ts can report the helm part as skipped.
#   scripts/helm-check.sh            (HELM=/path/to/helm to use another binary)
set -euo pipefail
cd "$(dirname "$0")/.."

HELM=${HELM:-helm}
CHART=helm/sessiongate

if ! command -v "$HELM" >/dev/null 2>&1; then
  echo "helm not found: skipped lint/template"
  exit 0
fi

echo "helm-check: using $("$HELM" version --short 2>/dev/null || echo "$HELM")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failures=0

run () { # run LABEL CMD...: runs a check that must succeed
  local label=$1; shift
  if "$@" >"$out/last.log" 2>&1; then
    echo "ok   $label"
  else
    echo "FAIL $label"; sed 's/^/     /' "$out/last.log"; failures=$((failures + 1))
  fi
}

refuse () { # refuse LABEL PATTERN CMD...: runs a render that must fail with a message matching PATTERN
  local label=$1 pattern=$2; shift 2
  if "$@" >"$out/last.log" 2>&1; then
    echo "FAIL $label (rendered, should have been refused)"; failures=$((failures + 1))
  elif grep -Eq "$pattern" "$out/last.log"; then
    echo "ok   $label (refused)"
  else
    echo "FAIL $label (refused, but not with /$pattern/)"; sed 's/^/     /' "$out/last.log"; failures=$((failures + 1))
  fi
}

for values in "$CHART"/ci/*-values.yaml; do
  name=$(basename "$values" -values.yaml)
  run "lint $name" "$HELM" lint "$CHART" -f "$values"
  run "template $name" "$HELM" template sg "$CHART" --namespace gateway -f "$values" --output-dir "$out/$name"
done

defaults="$CHART/ci/default-values.yaml"
refuse "memory store with 2 replicas" 'store.kind is memory' \
  "$HELM" template sg "$CHART" -f "$defaults" --set replicaCount=2
refuse "memory store with autoscaling" 'store.kind is memory' \
  "$HELM" template sg "$CHART" -f "$defaults" --set autoscaling.enabled=true
refuse "no existingSecret" 'secrets.existingSecret is required' \
  "$HELM" template sg "$CHART"
printf '%s\n' 'config:' '  store:' '    redis:' '      password: "${SG_REDIS_PASSWORD}"' >"$out/placeholder-values.yaml"
refuse "placeholder without a Secret key" 'SG_REDIS_PASSWORD' \
  "$HELM" template sg "$CHART" -f "$defaults" -f "$out/placeholder-values.yaml"
refuse "LoadBalancer exposing the admin port" 'allowExternalAdmin' \
  "$HELM" template sg "$CHART" -f "$defaults" --set service.type=LoadBalancer
redis="--set config.store.kind=redis --set config.store.redis.url=redis://redis:6379"
# shellcheck disable=SC2086
refuse "HPA without any metric" 'autoscaling: no metric' \
  "$HELM" template sg "$CHART" -f "$defaults" $redis --set autoscaling.enabled=true \
  --set autoscaling.targetCPUUtilizationPercentage=0 --set autoscaling.targetMemoryUtilizationPercentage=0
refuse "ServiceMonitor behind a NetworkPolicy closing the admin port" 'networkPolicy.adminFrom is empty' \
  "$HELM" template sg "$CHART" -f "$defaults" --set networkPolicy.enabled=true --set metrics.serviceMonitor.enabled=true
printf '%s\n' 'image:' '  tag: 1.10' >"$out/number-tag-values.yaml"
refuse "unquoted number as image.tag" 'image.tag' \
  "$HELM" template sg "$CHART" -f "$defaults" -f "$out/number-tag-values.yaml"
refuse "a typo in the gateway config (values.schema.json)" 'isuer' \
  "$HELM" template sg "$CHART" -f "$defaults" --set config.oidc.isuer=https://idp.example.com
refuse "a podLabels value changing a selector label" 'podLabels' \
  "$HELM" template sg "$CHART" -f "$defaults" --set podLabels.app\\.kubernetes\\.io/name=other
refuse "HTTPRoute without parentRefs" 'parentRefs' \
  "$HELM" template sg "$CHART" -f "$defaults" --set httpRoute.enabled=true

if [ "$failures" -gt 0 ]; then
  echo "helm-check: $failures check(s) failed"
  exit 1
fi
echo "helm-check: ok"
