#!/bin/bash
# Third screen round: network size. Two runs at a time. From the repository root.
S=blues-improvisation/side_runs/attempt_screen/screen.py
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
run() { python $S "$@"; }
(run cb16 chords 700-719 chord_blocks=16; run cb16 melody 700-719 chord_blocks=16) &
(run cb24 chords 700-719 chord_blocks=24; run cb12 melody 700-719 chord_blocks=12) &
wait
