"""The labels table's schema: fixed before the first row is written, recorded in the manifest, held across runs.

Without it each output file took its input file's types, so one table could hold `rating` as int32 in one
file and int64 in the next (Polars refuses such a folder; Delta refuses the append), and an incremental
run over inputs whose type changed wrote files no reader could union. So the schema is made once per run
from the input footers (`unify`: integers widen, integers and floats become float64, any other mix is
refused), every file is cast to it (`write.write_batch`), and an incremental run whose inputs no longer fit
the recorded schema is refused in one line before anything is labeled (`hold`).
"""

from __future__ import annotations

import base64

import pyarrow as pa

from pipelines.errors import UserError

# The model's columns, as docs/labeling.md documents them (between the input columns and the partition column)
MODEL_COLUMNS = [
    ("label", pa.int64()), ("label_name", pa.string()), ("score", pa.float32()),
    ("probabilities", pa.list_(pa.float32())), ("truncated", pa.bool_()), ("model_version", pa.string()),
    ("labeled_at", pa.timestamp("us", tz="UTC")), ("run_id", pa.string()),
]


def unify(column: str, seen: dict[str, pa.DataType]) -> pa.DataType:
    """One type for an input column from its type in each file (`seen`: file -> type)."""
    kinds = list(dict.fromkeys(seen.values()))
    if len(kinds) == 1:
        return _plain(kinds[0])
    if all(pa.types.is_integer(kind) for kind in kinds):
        return pa.int64()
    if all(pa.types.is_integer(kind) or pa.types.is_floating(kind) for kind in kinds):
        return pa.float64()
    if all(_plain(kind) == pa.string() for kind in kinds):
        return pa.string()
    first, other = (next(file for file, kind in seen.items() if kind == wanted) for wanted in kinds[:2])
    raise UserError(f"input column {column!r} is {seen[first]} in {first} but {seen[other]} in {other}; give "
                    "the files one type for it (or label them into separate outputs)")


def _plain(kind: pa.DataType) -> pa.DataType:
    """large_string and string_view are written as string: what every reader takes."""
    if pa.types.is_large_string(kind) or str(kind) == "string_view":
        return pa.string()
    return kind


def labels_schema(input_schemas: dict[str, pa.Schema], *, id_column: str, pass_through: list[str],
                  partition_column: str | None) -> pa.Schema:
    """The labels table's schema for these input files (file -> its footer's Arrow schema)."""
    def column(name: str) -> pa.Field:
        return pa.field(name, unify(name, {file: schema.field(name).type for file, schema in input_schemas.items()}))

    inputs = [name for name in dict.fromkeys([id_column, *pass_through]) if name != partition_column]
    fields = [column(name) for name in inputs] + [pa.field(name, kind) for name, kind in MODEL_COLUMNS]
    if partition_column:
        fields.append(column(partition_column))
    return pa.schema(fields)


def hold(recorded: pa.Schema, new: pa.Schema, output: str) -> pa.Schema:
    """The schema an incremental run writes: the recorded one, when the new inputs cast to it without loss
    (int32 into int64, an integer into float64); else a one-line refusal naming the column."""
    for field in new:
        if field.name not in recorded.names:
            continue  # the columns themselves are checked against the manifest's settings
        wanted = recorded.field(field.name).type
        if field.type != wanted and not _widens(field.type, wanted):
            raise UserError(f"input column {field.name!r} is now {field.type}, but the table in {output} has it as "
                            f"{wanted} (recorded by its first run); cast the input column back to {wanted}, or "
                            "label into a new output (or --overwrite this one)")
    return recorded


def _widens(source: pa.DataType, target: pa.DataType) -> bool:
    if pa.types.is_integer(source) and (pa.types.is_integer(target) and target.bit_width >= source.bit_width
                                        or pa.types.is_float64(target)):
        return True
    return pa.types.is_floating(source) and pa.types.is_float64(target)


def to_json(schema: pa.Schema) -> dict:
    """For the manifest: `fields` readable by people and SQL DDL, `arrow` exact (base64 Arrow IPC)."""
    return {"fields": [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema],
            "arrow": base64.b64encode(schema.serialize().to_pybytes()).decode()}


def from_json(document: dict) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(document["arrow"])))
