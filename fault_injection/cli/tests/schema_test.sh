#!/usr/bin/env bash
# Every JSON the CLI reads or writes validates against its versioned schema in docs/schemas/:
# the example case files, record.json of each example, a run report, a hazard run's report and a
# campaign report. The schemas must bite: an edited document (a wrong verdict, a missing field)
# must be rejected.
set -euo pipefail
rcsim="$1"
src="$2"
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT
validate() { python3 "${src}/scripts/validate_json.py" "${src}/docs/schemas/$1.schema.json" "${@:2}"; }
validate case-file "${src}"/examples/cases/*.json
records=()
for f in "${src}"/examples/cases/*.json; do
  name=$(basename "${f}" .json)
  "${rcsim}" case --in "${f}" --out "${work}/${name}" > /dev/null
  records+=("${work}/${name}/record.json")
done
validate case-record "${records[@]}"
"${rcsim}" run --seed 7 --steps 6 --report "${work}/run.json" > /dev/null
"${rcsim}" run --seed 1 --policy out-of-place --faults fused:garbage --steps 8 --report "${work}/hazard.json" > /dev/null
python3 -c 'import json,sys; v = json.load(open(sys.argv[1]))["verdict"]; assert v == "hazard", v' "${work}/hazard.json"
validate run-report "${work}/run.json" "${work}/hazard.json"
"${rcsim}" campaign --seeds 0:5 --no-coverage-gate --report "${work}/campaign.json" > /dev/null 2>&1
validate campaign-report "${work}/campaign.json"
# The schemas bite.
python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); r["verdict"] = "PASS"; json.dump(r, open(sys.argv[2], "w"))' \
  "${work}/run.json" "${work}/bad_run.json"
python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); del r["digest"]; json.dump(r, open(sys.argv[2], "w"))' \
  "${work}/campaign.json" "${work}/bad_campaign.json"
python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); r["branch"] = None; json.dump(r, open(sys.argv[2], "w"))' \
  "${records[0]}" "${work}/bad_record.json"
for pair in "run-report bad_run" "campaign-report bad_campaign" "case-record bad_record"; do
  set -- ${pair}
  if validate "$1" "${work}/$2.json" > /dev/null; then echo "FAIL: $2.json validated"; exit 1; fi
  echo "ok: $2.json rejected by $1"
done
