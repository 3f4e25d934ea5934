#!/bin/bash
# The screen's three rounds, two runs at a time (2 cores). From the repository root:
#   blues-improvisation/side_runs/attempt_screen/queue.sh {1|2|3}
# (round 1's fb4 and lr01 melody runs were stopped part-way once they had lost on chords)
S=blues-improvisation/side_runs/attempt_screen/screen.py
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
run() { python $S "$@"; }
case "$1" in
1)  # optimiser levers and peepholes
    (run base chords 700-719; run base melody 700-719; run fb4 chords 700-719 forget_bias=4.0
     run fb4 melody 700-719 forget_bias=4.0) &
    (run peep chords 700-719 peepholes=True; run peep melody 700-719 peepholes=True
     run lr01 chords 700-719 lr=0.01; run lr01 melody 700-719 lr=0.01) & ;;
2)  # more optimiser levers, and the first size change
    (run lr05 chords 700-719 lr=0.05; run fb1 chords 700-719 forget_bias=1.0) &
    (run b4 chords 700-719 batch=4; run cb12 chords 700-719 chord_blocks=12) & ;;
3)  # network size
    (run cb16 chords 700-719 chord_blocks=16; run cb16 melody 700-719 chord_blocks=16) &
    (run cb24 chords 700-719 chord_blocks=24; run cb12 melody 700-719 chord_blocks=12) & ;;
*)  echo "usage: $0 {1|2|3}" >&2; exit 2 ;;
esac
wait
