#!/usr/bin/env bash
# Derive physical properties of the published sample -> output/derived.ecsv (+ .fits).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# Paths below are relative to this folder: the provenance of the outputs records the
# inputs as given, so relative paths keep machine paths out of them.
cd "$HERE"
SHARED="${XMPSPEC_SHARED:-../../../shared}"
DATA="$SHARED/data/xmp_followup_2023_2024"
mkdir -p output
xmpspec derive "$DATA/published_line_measurements.csv" -o output/derived
