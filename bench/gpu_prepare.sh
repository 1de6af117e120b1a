#!/usr/bin/env bash
# Fills .device-carry/ (git-ignored) with what bench/gpu.sh needs on a lent GPU machine, within the device tool's
# 64 MiB a call (the checkout included):
#   wheels/  Ray 2.60 for CPython 3.12 without its Java jars (ray/jars: 32 MB of the 79 MB wheel; nothing here
#            runs Java workers), and the packages Ray Train and the project need that the image lacks
#   shared/  the KoBERT tokenizer files and the first 100,000 NSMC reviews (gpu_bench.py repeats them to 1M)
# Needs the package registry and ../shared (or $KOBERT_SHARED).
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.device-carry
SHARED=${KOBERT_SHARED:-../shared}
PYTHON=${PYTHON:-.venv/bin/python}
rm -rf "$CARRY" && mkdir -p "$CARRY/wheels" "$CARRY/shared/data/nsmc" /tmp/kobert-wheels
download() {
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d /tmp/kobert-wheels "$@" 2>&1 | { grep -v 'is ignored: it is neither' || true; }
}
# not on the image: Ray's own needs and Ray Train's (koreanize-matplotlib stays behind: 8 MB of font, and the
# reports fall back without it)
download ray==2.60.0 jsonschema jsonschema-specifications referencing rpds-py tensorboardX \
  pydantic pydantic-core annotated-types typing-inspection
"$PYTHON" - "$CARRY/wheels" <<'PY'
import sys, zipfile
from pathlib import Path
target = Path(sys.argv[1])
for wheel in Path("/tmp/kobert-wheels").glob("*.whl"):
    if not wheel.name.startswith("ray-2.60.0-"):
        (target / wheel.name).write_bytes(wheel.read_bytes())
        continue
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target / wheel.name, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():  # RECORD still lists the jars; pip installs what the archive holds
            if not item.filename.startswith("ray/jars/"):
                out.writestr(item, source.read(item.filename))
PY
cp -r "$SHARED/kobert" "$CARRY/shared/kobert"
"$PYTHON" -c "
import sys, pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.Table.from_batches([next(pq.ParquetFile(sys.argv[1]).iter_batches(batch_size=100_000))]), sys.argv[2])
" "$SHARED/data/nsmc/reviews.parquet" "$CARRY/shared/data/nsmc/reviews.parquet"
du -sh "$CARRY" "$CARRY"/wheels/* | sort -h | tail -5
