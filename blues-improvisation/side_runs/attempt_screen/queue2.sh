#!/bin/bash
# Second screen round (chords first), two runs at a time. From the repository root.
S=blues-improvisation/side_runs/attempt_screen/screen.py
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
run() { python $S "$@"; }
(run lr05 chords 700-719 lr=0.05; run fb1 chords 700-719 forget_bias=1.0) &
(run b4 chords 700-719 batch=4; run cb12 chords 700-719 chord_blocks=12) &
wait
