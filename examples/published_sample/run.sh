#!/usr/bin/env bash
# The published XMP follow-up sample through the xmpspec chain.
# Each step is one section; later steps (compare, tables, plots) append theirs.
#   bash examples/published_sample/run.sh            # from anywhere
# SHARED: the shared data folder (default: ../shared beside the repository).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SHARED="${XMPSPEC_SHARED:-$REPO/../shared}"
DATA="$SHARED/data/xmp_followup_2023_2024"
OUT="$HERE/output"
mkdir -p "$OUT"

# --- derive: distances, L(Halpha), SFR, N2/O3N2 abundances, BPT, classes ----------
bash "$HERE/run_derive.sh"

# --- compare with the CNN, paper tables, figures --------------------------------
bash "$HERE/run_products.sh"
