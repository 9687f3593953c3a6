"""A parser for commands that must not import transformers (HfArgumentParser imports torch):
the service, whose process stays lean. Same conventions as cli/config: `--config FILE.yaml`,
flags override it, unknown keys and bad values are one-line errors."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, NoReturn

from slimformer.cli.yaml_files import read_config
from slimformer.errors import fail


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see --help)")


def parse_bool(value: str) -> bool:
    text = str(value).lower()
    if text not in ("true", "false"):
        fail(f"expected true or false, got {value!r}")
    return text == "true"


def flag_type(kind: Any) -> Any:
    """The converter of a dataclass field's annotation (a string under postponed
    evaluation): bool, int, float, else str."""
    text = str(kind)
    for name, cast in (("bool", parse_bool), ("int", int), ("float", float)):
        if name in text:
            return cast
    return str


def add_fields(parser: argparse.ArgumentParser, cls: type) -> None:
    for f in dataclasses.fields(cls):
        parser.add_argument(f"--{f.name}", type=flag_type(f.type), default=f.default,
                            help=f"{f.metadata.get('help', '')} (default {f.default})")


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Flags over `--config`'s values over the defaults."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, rest = pre.parse_known_args(argv)
    if known.config:
        config = read_config(known.config)
        names = {a.dest for a in parser._actions}
        unknown = sorted(set(config) - names)
        if unknown:
            fail(f"unknown key(s) in {known.config}: {', '.join(map(str, unknown))}")
        parser.set_defaults(**config)
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML file of arguments")
    parser.epilog = "--config FILE.yaml reads arguments from YAML; flags given as well " \
        "override it."
    return parser.parse_args(rest)


def instance(cls: type, namespace: argparse.Namespace) -> Any:
    values = vars(namespace)
    try:
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})
    except TypeError as err:
        fail(str(err))
