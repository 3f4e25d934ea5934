#!/usr/bin/env bash
# The plateau-remedy study's runs (PROTOCOL.md), as two chains of niced single processes.
# Run from the repository root; results go to /tmp/to_plateau/<run>/, collected by
# collect_study.py into study.json.
set -u
PY="nice -n 19 python temporal-order-4bit/temporal_order_4bit.py --variants lstm --jobs 1 --quiet"
OUT=/tmp/to_plateau
R="--restarts 1 --restart-after 150000"
D="--restarts 0 --lr-drop-after 150000 --lr-drop 0.1"
mkdir -p $OUT
(
  $PY --seeds 200-229 --restarts 0 --outdir $OUT/P_200-229 > $OUT/P_200-229.log 2>&1
  $PY --seeds 200-229 $D --outdir $OUT/D_200-229 > $OUT/D_200-229.log 2>&1
) &
(
  $PY --seeds 200-229 $R --outdir $OUT/R_200-229 > $OUT/R_200-229.log 2>&1
  $PY --seeds 8,131,132,135 $R --outdir $OUT/R_diag > $OUT/R_diag.log 2>&1
  $PY --seeds 8,131,132,135 $D --outdir $OUT/D_diag > $OUT/D_diag.log 2>&1
) &
wait
