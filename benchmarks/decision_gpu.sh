#!/usr/bin/env bash
# The GPU measurements of the decision-based attacks (benchmarks/README.md, "On a GPU"): CGBA's
# quality on cifar10/resnet20, its speed on 100 and on 1,000 images against the same attack run
# one image at a time, padded against unpadded passes, and the other attacks' CUDA path.
# Usage: benchmarks/decision_gpu.sh OUTDIR   (robustkit installed; ROBUSTKIT_WEIGHTS and
# ROBUSTKIT_DATA set as for the tests; PYTHON defaults to python3). About 5 minutes on an H200.
# Everything it prints (the commands, the profile's lines) is also kept in OUTDIR/log.txt.
set -eu -o pipefail
O=${1:?usage: benchmarks/decision_gpu.sh OUTDIR (from the repository root; see its header)}
PY=${PYTHON:-python3}
B=benchmarks/decision.py
C="--device cuda --raw-seconds 0.2 --plot="
export PYTHONUNBUFFERED=1
mkdir -p "$O"
{
set -x
$PY $B --n 100 --models cifar10/resnet20 --attacks cgba --targeted-pairs 0 --speed-repeats 0 $C --out "$O/quality.json"
$PY $B --n 100 --models cifar10/resnet20,cifar10/resnet4b-at --attacks none --targeted-pairs 0 --speed-repeats 2 --speed-queries 1000 --serial-images 10 $C --out "$O/speed_n100.json"
$PY benchmarks/decision_profile.py --models cifar10/resnet20 --n 100 --queries 1000 --pad auto,off --repeats 2 --device cuda
$PY $B --n 1000 --models cifar10/resnet20,cifar10/resnet4b-at --attacks none --targeted-pairs 0 --speed-repeats 1 --speed-queries 1000 --serial-images 0 $C --out "$O/speed_n1000.json"
$PY $B --n 20 --budgets 250,500,1000 --models cifar10/resnet20 --attacks cgba-h,hsja,geoda --targeted-pairs 5 --speed-repeats 0 $C --out "$O/attacks.json"
} 2>&1 | tee "$O/log.txt"
