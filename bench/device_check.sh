#!/usr/bin/env bash
# The runtime mode on a CUDA machine: every confirm script and model check of tests/test_runtime*.py with
# --device cuda (same verdicts expected as on the CPU), then the per-step overhead on the GPU and the CPU.
#
#     OUT=/some/dir bash bench/device_check.sh
#
# Writes pytest.log, runs.json (verdict, status, device and seconds of every confirm run) and
# overhead.txt under $OUT. Needs python3 with torch (CUDA), pytest, click and libcst.
set -u
OUT=${OUT:-/tmp/dllint-device-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, libcst; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'libcst', libcst.__version__ if hasattr(libcst, '__version__') else '?')"

started=$(date +%s)
DLLINT_TEST_DEVICE=cuda DLLINT_TEST_RECORD="$OUT/runs.json" \
    python3 -m pytest -q -p no:cacheprovider -rs tests/test_runtime.py tests/test_runtime_model.py 2>&1 | tee "$OUT/pytest.log"
echo "runtime tests on cuda: $(( $(date +%s) - started )) s"

python3 bench/runtime_overhead.py --device cuda --repeats 5 2>&1 | tee -a "$OUT/overhead.txt"
python3 bench/runtime_overhead.py --device cpu --model mlp --repeats 5 2>&1 | tee -a "$OUT/overhead.txt"
