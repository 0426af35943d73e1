#!/usr/bin/env bash
# Derive physical properties of the published sample -> output/derived.ecsv (+ .fits).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SHARED="${XMPSPEC_SHARED:-$REPO/../shared}"
DATA="$SHARED/data/xmp_followup_2023_2024"
mkdir -p "$HERE/output"
xmpspec derive "$DATA/published_line_measurements.csv" -o "$HERE/output/derived"
