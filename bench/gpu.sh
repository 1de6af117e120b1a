#!/usr/bin/env bash
# Everything a GPU machine must show for issue 14, in one call of the device tool (at most 10 minutes a command):
#
#   bash bench/gpu_prepare.sh        # here, once: Ray's wheel (trimmed) and what the image lacks, the KoBERT
#                                    # tokenizer and a 100,000-review sample, into .device-carry/ (git-ignored)
#   device tool: run(command="bash bench/gpu.sh", carry=[".device-carry"], timeout_s=600)
#   bash bench/gpu.sh --smoke        # here: the same parts on the CPU with a tiny model (no figures kept)
#
# The device image has torch, transformers, onnxruntime and pyarrow but not Ray, and reaches no package index:
# the carried wheels are installed into /tmp/site. The project itself runs from the checkout (PYTHONPATH), as
# pip would pull torch's pinned CPU build. Figures: bench/results/gpu.json and gpu.md (bench/gpu_bench.py), also
# copied to $OUT where the device tool sets it.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}  # the image: python3
CARRY=.device-carry
if [ -d "$CARRY/wheels" ] && ! "$PYTHON" -c "import ray" 2>/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$CARRY"/wheels/*.whl \
    || { echo "gpu.sh: installing the carried wheels failed" >&2; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
[ -d "$CARRY/shared" ] && export KOBERT_SHARED=${KOBERT_SHARED:-$PWD/$CARRY/shared}
export PYTHONUNBUFFERED=1 RAY_ADDRESS=
"$PYTHON" bench/gpu_bench.py "$@"
status=$?
if [ -n "${OUT:-}" ]; then
  cp bench/results/gpu.json bench/results/gpu.md "$OUT"/ 2>/dev/null || true
fi
exit $status
