#!/usr/bin/env bash
# The one prepared script for a GPU lease (device tool): benchmarks and training checks.
# Carry .whl (d2l --no-deps, IPython 8 and friends for Python 3.12) and .devgz (the four
# Fashion-MNIST .gz files). Every stage is time-boxed; what ran lands in $OUT.
set -u
OUT=${OUT:-/tmp/out}
PY=${PY:-python3}
start=$(date +%s)
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export CNN_DATA=/tmp/cnn-data
mkdir -p $CNN_DATA/FashionMNIST/raw && cp .devgz/*.gz $CNN_DATA/FashionMNIST/raw/
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt
$PY -c "import torch; print('torch', torch.__version__)" >> $OUT/gpu.txt
stage() {  # stage NAME SECONDS CMD...: run with a limit, log to $OUT/NAME.log
  local name=$1 limit=$2; shift 2
  timeout -k 5 "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "$name: rc=$? at $(( $(date +%s) - start )) s" | tee -a $OUT/stages.txt
}
stage bench_eager ${T1:-230} $PY bench/bench_trainer.py --epochs 10 --d2l-epochs 1 \
      --models lenet,resnet,vgg --json $OUT/bench_eager.json
stage training_check ${T2:-80} $PY bench/bench_training_check.py --out $OUT/tc --device cuda
stage bench_compile ${T3:-90} $PY bench/bench_trainer.py --epochs 10 --skip-d2l --compile on \
      --models lenet,resnet --json $OUT/bench_compile.json
cd $OUT && tar czf tc.tgz tc && rm -rf tc
