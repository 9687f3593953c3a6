"""Reading a config file: YAML that means one thing, or a one-line error naming the file.

PyYAML's safe loader keeps the last of two equal keys without a word, and expands aliases, so a
few hundred bytes of anchors can become megabytes (and a megabyte error line). Configs here are
flat mappings of argument values: a key given twice and any alias are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from slimformer.errors import fail


class StrictLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "aliases (*name) are not allowed in a config", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {str(key)[:60]!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_config(path: str | Path) -> dict[str, Any]:
    """A config file's mapping of argument names to values."""
    if not isinstance(path, str | Path):
        fail(f"--config must be a file path, got {type(path).__name__}")
    file = Path(path)
    if not file.is_file():
        fail(f"config file not found: {file}")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        fail(f"config file {file} is not UTF-8 text")
    try:
        content = yaml.load(text, Loader=StrictLoader) or {}  # noqa: S506 (a safe loader)
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        fail(f"config file {file} is not valid YAML{line}: {first}")
    if not isinstance(content, dict):
        fail(f"config file {file} must hold a mapping of argument names to values")
    return content
