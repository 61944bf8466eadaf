#!/usr/bin/env bash
# The one prepared script for a GPU lease (device tool): GPU tests, benchmarks and full
# chapter runs, each stage time-boxed, in the order of what matters most if the lease runs
# short. Every stage's log and results land in $OUT/results.tgz (re-packed after each stage,
# so a lease cut short still brings back what finished); $OUT/stages.txt says how far it got.
#
# Prepare here with `bash bench/device_prep.sh` (the wheels the image lacks, a Jupyter kernel
# for the `chapters` stage among them, and the data, about 45 MB with the tree of the 64
# that may travel), then run with carry [".whl", ".devdata"] and timeout_s 590. A dry run
# here, on the CPU, without the wheels:
#   NO_WHEELS=1 PY=.venv/bin/python OUT=/tmp/out STAGES=... bash bench/device_run.sh
#
# STAGES picks and orders the stages (default: the scale issue's three); T_<stage> sets a
# stage's limit in seconds. The others:
#   d2l10     d2l.Trainer's own 10 epochs of ResNet-18 and VGG-small (the chapters' honest
#             reference numbers), beside the course trainer, in one run
#   seeds     the chapters' ResNet-18 and VGG-small recipes with seeds 0, 1 and 2
#   chapters  run book/08_resnet.ipynb in full (CHAPTERS to change which) and bring the
#             executed copies back, to be stored in the book after a look
set -u
OUT=${OUT:-/tmp/out}
PY=${PY:-python3}
STAGES=${STAGES:-gpu_tests,bench_trainer,bench_pack}
CHAPTERS=${CHAPTERS:-book/08_resnet.ipynb}
RES=${RES:-/tmp/results}
mkdir -p $RES $OUT
start=$(date +%s)
if [ -z "${NO_WHEELS:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl || exit 3
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export CNN_DATA=/tmp/cnn-data
mkdir -p $CNN_DATA/FashionMNIST/raw && cp .devdata/*.gz $CNN_DATA/FashionMNIST/raw/
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt
$PY -c "import torch; print('torch', torch.__version__)" >> $OUT/gpu.txt
cp $OUT/gpu.txt $RES/

stage() {  # stage NAME DEFAULT_SECONDS CMD...: run with a limit, log to NAME.log, re-pack
  local name=$1 limit_var="T_$1" limit; limit=${!limit_var:-$2}; shift 2
  timeout -k 5 "$limit" "$@" > "$RES/$name.log" 2>&1
  echo "$name: rc=$? at $(( $(date +%s) - start )) s (limit $limit s)" | tee -a $OUT/stages.txt
  cp $OUT/stages.txt $RES/
  tar czf $OUT/results.tgz -C $RES .
}

for s in ${STAGES//,/ }; do
  case $s in
  # the GPU tests: eager and graph agree, capture falls back, the grader's GPU training
  gpu_tests) stage gpu_tests 100 $PY -m pytest -p no:cacheprovider -q -m gpu \
      tests/test_cuda_graph.py tests/test_autograder_training.py -o addopts=-ra ;;
  # the course trainer, eager against CUDA graph, and d2l.Trainer (1 epoch), in one run
  bench_trainer) stage bench_trainer 220 $PY bench/bench_trainer.py --epochs 10 \
      --d2l-epochs 1 --graph both --models resnet,lenet,vgg --json $RES/bench_trainer.json ;;
  # submissions per hour with 1 and 8 training jobs packed on the GPU, then 4 and 2;
  # eager and graph at each count (a stage cut short still compares them)
  bench_pack) stage bench_pack 220 $PY bench/bench_gpu_pack.py --n 8 --jobs 1,8,4,2 \
      --modes eager,graph --json $RES/bench_pack.json ;;
  d2l10) stage d2l10 280 $PY bench/bench_trainer.py --epochs 10 --d2l-epochs 10 \
      --models resnet,vgg --json $RES/bench_d2l10.json ;;
  seeds) stage seeds 260 $PY bench/bench_seeds.py --models resnet,vgg --seeds 0,1,2 \
      --json $RES/bench_seeds.json ;;
  chapters) stage chapters 200 $PY scripts/execute_notebooks.py --timeout 180 --out $RES \
      $CHAPTERS ;;
  *) echo "unknown stage $s" | tee -a $OUT/stages.txt ;;
  esac
done
