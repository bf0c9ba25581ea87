#!/usr/bin/env bash
# Recompile the locked environments from their short input lists (requirements*.in):
#   requirements-dev.txt  everything CI installs: runtime, dev tools, the optional extras
#   requirements.txt      the runtime alone, held to the very versions of the dev lock
#   requirements-explain.txt, requirements-tracking.txt, requirements-dask.txt,
#   requirements-sql.txt  the runtime and one optional extra (shap, MLflow, Dask, ADBC's
#                         database drivers), held to them too
# Run it (make lock) after editing a .in file; add --upgrade to move every pin to the newest
# release the ranges allow. It needs pip-tools (in the dev environment).
set -euo pipefail
cd "$(dirname "$0")/.."
options=(--quiet --strip-extras --no-emit-index-url --no-emit-find-links --annotation-style=line "$@")
pip-compile "${options[@]}" --output-file requirements-dev.txt requirements-dev.in
# The runtime lock may not pick other versions than the dev lock: it is compiled under it.
grep -v '^-e ' requirements-dev.txt > .lock-constraints.txt
trap 'rm -f .lock-constraints.txt' EXIT
pip-compile "${options[@]}" --constraint .lock-constraints.txt --output-file requirements.txt requirements.in
for extra in explain tracking dask sql; do
    pip-compile "${options[@]}" --constraint .lock-constraints.txt --output-file "requirements-$extra.txt" \
        "requirements-$extra.in"
done
