#!/bin/bash
# The screen's queue, two runs at a time (2 cores). From the repository root.
S=blues-improvisation/side_runs/attempt_screen/screen.py
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
run() { python $S "$@"; }
(run base chords 700-719; run base melody 700-719; run fb4 chords 700-719 forget_bias=4.0; run fb4 melody 700-719 forget_bias=4.0) &
(run peep chords 700-719 peepholes=True; run peep melody 700-719 peepholes=True; run lr01 chords 700-719 lr=0.01; run lr01 melody 700-719 lr=0.01) &
wait
