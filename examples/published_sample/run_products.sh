#!/usr/bin/env bash
# Compare with the CNN, write the paper tables and the figures of the published sample.
# Needs output/derived.ecsv (run_derive.sh). Writes:
#   output/comparison.{ecsv,fits,txt,png,pdf}
#   output/tables/{observing_log,line_measurements,derived_properties}.{tex,mrt,txt,ecsv,fits}
#   output/figures/{oh,sfr}_distribution.{png,pdf}, output/figures/bpt.{png,pdf}
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# Paths below are relative to this folder: the provenance of the outputs records the
# inputs as given, so relative paths keep machine paths out of them.
cd "$HERE"
SHARED="${XMPSPEC_SHARED:-../../../shared}"
DATA="$SHARED/data/xmp_followup_2023_2024"
OUT="output"
DERIVED="$OUT/derived.ecsv"
if [ ! -f "$DERIVED" ]; then
    echo "run_products.sh: $DERIVED not found: run run_derive.sh first" >&2
    exit 2
fi
# --- compare: observed N2 vs the CNN prediction (match by name, else 2 arcsec) ------
xmpspec compare "$DERIVED" --selection "$DATA/selection_and_observing_log.csv" -o "$OUT"
# --- tables: observing log, line measurements, derived properties (AASTeX + MRT) ---
# Errors are given with 2 significant digits (products.error_digits); add
# --error-digits pdg for the Particle Data Group rule (2 digits for 10-35, else 1).
xmpspec tables "$DERIVED" --selection "$DATA/selection_and_observing_log.csv" \
    --style aastex --sort ra -o "$OUT/tables"
# --- plots: O/H, SFR, M* distributions and the BPT diagram --------------------------
xmpspec plots "$DERIVED" -o "$OUT/figures"
