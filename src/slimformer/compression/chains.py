"""Running chains of passes from one model: each prefix once, the variants asked for into
their own folders (checked before any work), the steps towards them in a scratch folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimformer.compression.passes.base import Pass, PassContext, parse_chain, registry
from slimformer.files import check_target

logger = logging.getLogger(__name__)


@dataclass
class Chain:
    """A variant: its passes (as spelled), their configs, and the folder-name suffix."""

    key: str  # as asked for: an alias such as onnx-opt-int8, or "onnx > O2 > int8"
    parts: tuple[str, ...]
    passes: tuple[Pass, ...]
    configs: tuple[Any, ...]

    @property
    def suffix(self) -> str:
        return "-".join(p.label(c) for p, c in zip(self.passes, self.configs))

    @property
    def makes(self) -> str:
        return self.passes[-1].makes

    def prefix(self, length: int) -> Chain:
        return Chain(" > ".join(self.parts[:length]), self.parts[:length],
                     self.passes[:length], self.configs[:length])

    def without(self, name: str) -> Chain:
        """The same chain without one pass (to compare a fused graph with the plain one)."""
        keep = [i for i, p in enumerate(self.passes) if p.name != name]
        return Chain(" > ".join(self.parts[i] for i in keep),
                     tuple(self.parts[i] for i in keep), tuple(self.passes[i] for i in keep),
                     tuple(self.configs[i] for i in keep))


def chain_of(key: str, settings: Any, start: str = "pytorch") -> Chain:
    """Parse and configure a chain: every pass's config checked before any work."""
    parts = parse_chain(key, start=start)
    known = registry()
    passes = tuple(known[p] for p in parts)
    return Chain(key, parts, passes,
                 tuple(p.configure(settings, part) for p, part in zip(passes, parts)))


def run_chains(source: Path, chains: list[Chain], final: dict[str, Path], scratch: Path,
               context: PassContext) -> dict[str, Path]:
    """Make every chain from `source`. A chain whose key is in `final` is written there (its
    target checked first); every other prefix goes into `scratch`, and a prefix that chains
    share is made once. Returns key -> folder."""
    wanted: dict[str, Path] = {}
    for chain in chains:
        if chain.key in final:
            check_target(final[chain.key], chain.passes[-1].step, context.overwrite)
            wanted[chain.suffix] = final[chain.key]
    built: dict[str, Path] = {}
    made: dict[str, Path] = {}
    for chain in chains:
        folder = source
        for length in range(1, len(chain.passes) + 1):
            step = chain.prefix(length)
            if step.suffix not in built:
                target = wanted.get(step.suffix, scratch / f"{source.name}-{step.suffix}")
                step.passes[-1].run(folder, target, step.configs[-1], context)
                built[step.suffix] = target
            folder = built[step.suffix]
        made[chain.key] = folder
    return made
