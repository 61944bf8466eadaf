#!/usr/bin/env bash
# Prepares what bench/device_run.sh carries to the GPU machine: .whl (what its Python 3.12
# image lacks, as wheels) and .devdata (the Fashion-MNIST files). Both folders are ignored
# by git. Run here, from the repository root, with the registry reachable:
#   bash bench/device_prep.sh          # then: device run, carry [".whl", ".devdata"]
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${PIP:-.venv/bin/pip}
DATA=${DATA:-../shared/data/FashionMNIST/raw}
rm -rf .whl && mkdir -p .whl .devdata
cp "$DATA"/*.gz .devdata/
# pure-Python wheels: d2l (used --no-deps), the test runner's pins, Dask and its needs
$PIP download -q --no-deps -d .whl d2l==1.0.3 pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1 \
    pytest-timeout==2.4.0 dask==2026.8.0 distributed==2026.8.0 cloudpickle==3.1.3 \
    locket==1.0.0 partd==1.4.2 tblib==3.2.2 toolz==1.2.0 zict==3.0.0 sortedcontainers==2.4.0
# a Jupyter kernel for the `chapters` stage (the image has none), for CPython 3.12; debugpy
# and jedi are left out (ipykernel and IPython run without them, tried with 3.12 here), and
# psutil, pygments, packaging, python-dateutil and matplotlib are in the image
$PIP download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl \
    nbclient==0.11.0 nbformat==5.11.1 ipykernel==7.4.0 ipython==9.19.1 \
    ipython_pygments_lexers==1.1.1 jupyter_client==8.10.0 jupyter_core==5.9.1 \
    traitlets==5.16.1 tornado==6.6.1 pyzmq==27.3.0 comm==0.2.3 matplotlib_inline==0.2.2 \
    nest_asyncio2==1.7.4 prompt_toolkit==3.0.53 wcwidth==0.9.5 pexpect==4.9.0 \
    ptyprocess==0.7.0 stack_data==0.6.3 executing==2.3.0 asttokens==3.0.2 pure_eval==0.2.4 \
    fastjsonschema==2.22.3 jsonschema==4.26.0 jsonschema_specifications==2025.9.1 \
    referencing==0.37.0 rpds_py==2026.9.1 platformdirs==4.14.9
dupes=$(ls .whl | sed 's/-[0-9].*//' | tr 'A-Z_' 'a-z-' | sort | uniq -d)
[ -z "$dupes" ] || { echo "two versions of: $dupes (the install there would stop)"; exit 1; }
echo "$(ls .whl | wc -l) wheels ($(du -sh .whl | cut -f1)), data $(du -sh .devdata | cut -f1)"
