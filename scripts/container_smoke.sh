#!/usr/bin/env bash
# Build the image from the real Dockerfile and use it as a user would: train on the shipped
# data into a mounted models folder, predict a mounted file, serve (health, ready, a scored
# customer, the HEALTHCHECK), and check what the image must and must not hold.
#
#   scripts/container_smoke.sh                          # podman: build on a Debian stand-in base, then smoke
#   scripts/container_smoke.sh --engine docker --image churn:ci --no-build   # GitHub Actions, after its build
#
# With podman (no Docker daemon, no image registry on this kind of machine) the base image
# python:3.11-slim is stood in for by Debian 12's python3, made with mmdebstrap (see
# ../shared/CONTAINERS.md of the project's machines); every step runs on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

engine=podman
image=churn:local
build=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) engine=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    --no-build) build=no; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

if [ "$engine" = podman ]; then
  # This sandbox runs podman as root without systemd: runc and cgroupfs, no default ulimits.
  export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/scripts/containers.conf}"
  run=(podman --runtime=runc --cgroup-manager=cgroupfs)
  build_options=(--format docker --network=host -v /etc/ssl/certs:/etc/ssl/certs:ro)
  base=localhost/debian-python:bookworm
  if [ "$build" = yes ] && ! "${run[@]}" image exists "$base"; then
    echo "== making $base from Debian's packages (stands in for python:3.11-slim)"
    workdir=$(mktemp -d)
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$workdir/base.tar"
    "${run[@]}" import "$workdir/base.tar" "$base" >/dev/null
    rm -rf "$workdir"
  fi
  build_options+=(--build-arg "BASE_IMAGE=$base")
else
  run=(docker)
  build_options=()
fi

# Run the engine; podman's notices that this sandbox has no systemd (for healthcheck timers)
# are harmless and filtered out.
engine() { "${run[@]}" "$@" 2> >(grep -v "systemd connection" >&2); }

if [ "$build" = yes ]; then
  echo "== building $image"
  started=$(date +%s)
  engine build "${build_options[@]}" -t "$image" . >/dev/null
  echo "built in $(( $(date +%s) - started )) s"
fi
size=$(engine image inspect "$image" --format '{{.Size}}')
echo "image size: $(( size / 1000000 )) MB"

work=$(mktemp -d)
container="churn-smoke-$$"
cleanup() { "${run[@]}" rm -f "$container" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/models" "$work/in" "$work/out"
chmod 777 "$work/models" "$work/out"  # the image's user (uid 10001) writes there
head -n 51 data/raw/telco_customer_churn.csv > "$work/in/customers.csv"

echo "== train on the shipped data, into a mounted models folder"
engine run --rm --network=host -v "$work/models:/app/models" "$image" train -q > "$work/train.txt"
grep -q "(now latest)" "$work/train.txt"
run_id=$(cat "$work/models/latest")
test -f "$work/models/$run_id/model.joblib"
echo "trained run $run_id"

echo "== predict a mounted file"
engine run --rm --network=host -v "$work/models:/app/models" -v "$work/in:/in:ro" -v "$work/out:/out" \
  "$image" predict -q --input /in/customers.csv --output /out/scored.csv
test "$(wc -l < "$work/out/scored.csv")" -eq 51
head -n 1 "$work/out/scored.csv" | grep -q "customerID,churn_probability,churn_prediction"

echo "== serve"
port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
engine run -d --name "$container" --network=host -v "$work/models:/app/models" \
  -e "CHURN_HEALTH_URL=http://127.0.0.1:$port/health" "$image" serve --host 127.0.0.1 --port "$port" >/dev/null
ready=no
for _ in $(seq 1 120); do  # at most 60 s
  if python3 -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:$port/ready', timeout=2).status != 200)" 2>/dev/null; then
    ready=yes; break
  fi
  sleep 0.5
done
if [ "$ready" != yes ]; then engine logs "$container"; exit 1; fi
python3 - "$port" "$run_id" <<'PY'
import csv, json, sys, urllib.request
port, run_id = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
assert urllib.request.urlopen(base + "/health", timeout=5).status == 200
customer = next(csv.DictReader(open("data/raw/telco_customer_churn.csv", encoding="utf-8")))
del customer["Churn"]
request = urllib.request.Request(base + "/predict", data=json.dumps({"customers": [customer]}).encode(),
                                 headers={"content-type": "application/json"})
answer = json.load(urllib.request.urlopen(request, timeout=10))
prediction = answer["predictions"][0]
assert answer["run_id"] == run_id and 0.0 <= prediction["churn_probability"] <= 1.0, answer
print(f"/predict: customer {prediction['customerID']} churn probability {prediction['churn_probability']:.4f}")
PY
if [ "$engine" = podman ]; then  # docker runs the HEALTHCHECK on its own schedule
  engine healthcheck run "$container" >/dev/null || { echo "the HEALTHCHECK reports unhealthy" >&2; exit 1; }
  echo "HEALTHCHECK: healthy"
fi
engine stop -t 15 "$container" >/dev/null
status=$(engine inspect "$container" --format '{{.State.ExitCode}}')
test "$status" -eq 0 || { echo "serve exited with $status on SIGTERM" >&2; exit 1; }
echo "stopped with exit code 0"

echo "== what the image holds"
user=$(engine run --rm --entrypoint id "$image" -u)
test "$user" = 10001 || { echo "runs as uid $user, not 10001" >&2; exit 1; }
if engine run --rm --entrypoint python3 "$image" -c "import pytest" >/dev/null 2>&1; then
  echo "the image holds dev tools (pytest)" >&2; exit 1
fi
if engine run --rm --entrypoint sh "$image" -c "ls /app/models/*/model.joblib /app/tests" >/dev/null 2>&1; then
  echo "the image holds models or tests" >&2; exit 1
fi
echo "runs as uid 10001; no dev tools, no tests, no models inside"
echo "container smoke test passed"
