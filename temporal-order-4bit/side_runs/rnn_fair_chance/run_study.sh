#!/usr/bin/env bash
# The RNN fair-chance study (README.md): three tuning runs, then the chosen lr on 0-9.
# Run from the repository root.  Usage: run_study.sh tune | run_study.sh final LR
#   Part 2 (the paper's online procedure): run_study.sh paper-tune | run_study.sh paper-final ALPHA
set -eu
S=temporal-order-4bit/side_runs/rnn_fair_chance
PY="python temporal-order-4bit/temporal_order_4bit.py --variants rnn --clip 1 --rnn-backward float64 --jobs 2 --quiet"
PP="python temporal-order-4bit/temporal_order_4bit.py --preset paper --variants rnn --jobs 2 --quiet"
if [ "$1" = paper-tune ]; then
  for A in 0.01 0.1 1; do
    $PP --lr $A --seeds 100-104 --budget 100000 --outdir $S/paper_lr_${A}_seeds_100-104
  done
elif [ "$1" = paper-final ]; then
  $PP --lr "$2" --seeds 0-9 --budget 1000000 --outdir temporal-order-4bit/paper_rnn
elif [ "$1" = tune ]; then
  for LR in 0.01 0.03 0.1; do
    $PY --lr-rnn $LR --seeds 100-104 --outdir $S/lr_${LR}_seeds_100-104
  done
else
  $PY --lr-rnn "$2" --seeds 0-9 --outdir $S/lr_${2}_seeds_0-9
fi
