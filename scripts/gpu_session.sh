#!/usr/bin/env bash
# One prepared GPU session (docs/performance.md, "On a GPU"): everything writes under $OUT.
#
#   bash scripts/gpu_session.sh env bench table1   # steps, in order; default: all three
#
# env:    install the carried wheels (.whl/, from scripts/gpu_wheels.sh) and print the machine
# bench:  bench.crossval Ballroom-sized (698 tracks) on CUDA with --amp, all four kernels'
#         architectures; bench training (patches/s at batch 10 and 256)
# table1: SynthBallroom generated with every core, then the shipped Table 1's recipe on CUDA
#         (10 folds, quick) for ARCHS (default blackbox,timefreq-init: at the paper's batch of
#         10 a GPU row takes 3-12 min, so all five do not fit one 10-minute device call):
#         $OUT/checkpoints/table1-synth.json
# Each step logs to $OUT/<step>.log; a failing step does not stop the next.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(env bench table1)

step_env() {
    if [ -d .whl ]; then
        python -m pip install -q --no-index --find-links .whl soundfile soxr safetensors tqdm psutil
    fi
    nvidia-smi || true
    python -c "import torch, sys; print(sys.version); print(torch.__version__, torch.cuda.get_device_name(0))"
}

step_bench() {
    python -m bench.crossval --tracks 698 --device cuda --amp --arch time timefreq blackbox
    python -m bench.training --device cuda --amp
}

step_table1() {
    python -m tfcnn synth data/synth-ballroom --workers "$(nproc)" --quiet
    time python -m scripts.train_shipped --data data/synth-ballroom --device cuda \
        --archs "${ARCHS:-blackbox,timefreq-init}" \
        --runs "$OUT/runs" --checkpoints "$OUT/checkpoints" --quiet
}

for step in "${steps[@]}"; do
    echo "== $step $(date -u +%H:%M:%S)"
    "step_$step" > "$OUT/$step.log" 2>&1
    echo "   exit $? $(date -u +%H:%M:%S)"
    tail -n 20 "$OUT/$step.log"
done
