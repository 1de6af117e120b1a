"""Typed config ↔ command line: each config is a dataclass whose fields carry their help text.

A field's `metadata` holds `help` (required), and optionally `flag` (default `--field-name`) and `choices`.
Subcommands build their parser from the dataclasses they need, and turn the parsed namespace back into
those dataclasses, whose `__post_init__` validates values; so the CLI, tests and Python callers share one
definition of every knob.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def _flag(field: dataclasses.Field) -> str:
    return field.metadata.get("flag", "--" + field.name.replace("_", "-"))


def add_dataclass_arguments(parser: argparse.ArgumentParser, config_class: type, title: str | None = None,
                            exclude: tuple[str, ...] = ()) -> None:
    """Add one option per field of `config_class` (but those in `exclude`), with its help text and default."""
    group = parser.add_argument_group(title or config_class.__name__, (config_class.__doc__ or "").split("\n")[0])
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        if not field.init or "help" not in field.metadata or field.name in exclude:
            continue
        kind = hints[field.name]
        # argparse %-formats help strings: a literal "15%" must reach it as "15%%"
        options: dict[str, Any] = {"dest": field.name, "help": field.metadata["help"].replace("%", "%%")}
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if required:
            options["required"] = True
        else:
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            options["default"] = default
            options["help"] += f" (default: {default})" if default not in (None, "", [], ()) else ""
        base = _base_type(kind)
        if base is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif base is list:
            options["type"] = _comma_list
        else:
            options["type"] = base
        if "choices" in field.metadata:
            options["choices"] = field.metadata["choices"]
        group.add_argument(_flag(field), **options)


def dataclass_from_args(config_class: type[T], args: argparse.Namespace) -> T:
    """Build `config_class` from the parsed options that belong to it."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class) if f.init and hasattr(args, f.name)}
    return config_class(**values)


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _base_type(kind: Any) -> type:
    """`int | None` → int, `list[str]` → list, `str` → str."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return _base_type(args[0])
    if origin in (list, tuple):
        return list
    return kind
