#!/usr/bin/env bash
# The one prepared script for a GPU lease (device tool): GPU tests and benchmarks, each stage
# time-boxed, in the order of what matters most if the lease runs short; what ran lands in
# $OUT (stages.txt says how far it got).
#
# Prepare here, then run with carry [".whl", ".devdata"] and timeout_s 590:
#   mkdir -p .whl .devdata && cp ../shared/data/FashionMNIST/raw/*.gz .devdata/
#   .venv/bin/pip download --no-deps -d .whl d2l==1.0.3 pytest==9.2.0 pluggy==1.7.0 \
#       iniconfig==2.3.1 pytest-timeout==2.4.0 dask==2026.8.0 distributed==2026.8.0 \
#       cloudpickle==3.1.3 locket==1.0.0 partd==1.4.2 tblib==3.2.2 toolz==1.2.0 \
#       zict==3.0.0 sortedcontainers==2.4.0
#   (and, for Python 3.12 there, whatever `python3 -c "import d2l.torch"` reports missing)
set -u
OUT=${OUT:-/tmp/out}
PY=${PY:-python3}
start=$(date +%s)
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export CNN_DATA=/tmp/cnn-data
mkdir -p $CNN_DATA/FashionMNIST/raw && cp .devdata/*.gz $CNN_DATA/FashionMNIST/raw/
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt
$PY -c "import torch; print('torch', torch.__version__)" >> $OUT/gpu.txt
stage() {  # stage NAME SECONDS CMD...: run with a limit, log to $OUT/NAME.log
  local name=$1 limit=$2; shift 2
  timeout -k 5 "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "$name: rc=$? at $(( $(date +%s) - start )) s" | tee -a $OUT/stages.txt
}
# 1. the GPU tests: eager and graph agree, capture falls back, the grader's GPU training
stage gpu_tests ${T1:-100} $PY -m pytest -p no:cacheprovider -q -m gpu \
      tests/test_cuda_graph.py tests/test_autograder_training.py -o addopts=-ra
# 2. the course trainer, eager against CUDA graph, and d2l.Trainer, in one run
stage bench_trainer ${T2:-220} $PY bench/bench_trainer.py --epochs 10 --d2l-epochs 1 \
      --graph both --models resnet,lenet,vgg --json $OUT/bench_trainer.json
# 3. submissions per hour, 1, 4 and 8 training jobs packed on the GPU, eager and graph
stage bench_pack ${T3:-220} $PY bench/bench_gpu_pack.py --n 16 --jobs 1,4,8 \
      --modes graph,eager --json $OUT/bench_pack.json
