#!/usr/bin/env bash
# The RNN fair-chance study (README.md): three tuning runs, then the chosen lr on 0-9.
# Run from the repository root.  Usage: run_study.sh tune | run_study.sh final LR
set -eu
S=temporal-order-4bit/side_runs/rnn_fair_chance
PY="python temporal-order-4bit/temporal_order_4bit.py --variants rnn --clip 1 --rnn-backward float64 --jobs 2 --quiet"
if [ "$1" = tune ]; then
  for LR in 0.01 0.03 0.1; do
    $PY --lr-rnn $LR --seeds 100-104 --outdir $S/lr_${LR}_seeds_100-104
  done
else
  $PY --lr-rnn "$2" --seeds 0-9 --outdir $S/lr_${2}_seeds_0-9
fi
