#!/usr/bin/env bash
# The device check (see scripts/device_check.py): on a GPU machine, with a tiny model folder built here by
#   python scripts/device_check.py --build tiny-model
# carried along; elsewhere it builds the tiny model itself. Prints one PASS/FAIL line per step.
set -euo pipefail
cd "$(dirname "$0")/.."
python scripts/device_check.py "$@"
