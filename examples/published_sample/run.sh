#!/usr/bin/env bash
# The published XMP follow-up sample through the xmpspec chain.
# Each step is one section; later steps (compare, tables, plots) append theirs.
#   bash examples/published_sample/run.sh            # from anywhere
# SHARED: the shared data folder (default: ../shared beside the repository).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# Paths below are relative to this folder: the provenance of the outputs records the
# inputs as given, so relative paths keep machine paths out of them.
cd "$HERE"
SHARED="${XMPSPEC_SHARED:-../../../shared}"
DATA="$SHARED/data/xmp_followup_2023_2024"
OUT="output"
mkdir -p "$OUT"

# --- derive: distances, L(Halpha), SFR, N2/O3N2 abundances, BPT, classes ----------
bash ./run_derive.sh

# --- compare with the CNN, paper tables, figures --------------------------------
bash ./run_products.sh
