"""The `compress` step's settings (light to import: the CLI builds its parser from them)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Today's variant names, each an alias of its chain of passes (slimformer.compression.passes);
# `--variants` takes these or chains such as "onnx > O3 > int8".
ALIASES = {"torch-int8": "torch-int8", "onnx": "onnx", "onnx-opt": "onnx > opt",
           "onnx-int8": "onnx > int8", "onnx-int8-static": "onnx > int8-static",
           "onnx-opt-int8": "onnx > opt > int8"}
ALL_VARIANTS = tuple(ALIASES)


@dataclass
class CompressArguments:
    model: str = field(default="", metadata={"help": "sequence-classification model folder"})
    output_dir: str | None = field(default=None,
                                   metadata={"help": "where variant folders go (default: "
                                             "beside the model)"})
    variants: list[str] = field(default_factory=lambda: list(ALL_VARIANTS),
                                metadata={"help": f"which to make: {', '.join(ALL_VARIANTS)}, "
                                          "or chains of passes like 'onnx > O2 > int8' "
                                          "(O2-emb also fuses the embeddings)"})
    optimization_level: str = field(default="O2", metadata={"help": "ORTOptimizer level O1-O3 "
                                                            "(O4: GPU fp16)"})
    min_speedup: float = field(default=1.03, metadata={"help": "keep an optimized graph only "
                                                       "if its p50 (median of per-process "
                                                       "rounds) is this much faster and it "
                                                       "is not measurably slower"})
    speedup_queries: int = field(default=200, metadata={"help": "queries timed per round for "
                                                        "that check"})
    speedup_rounds: int = field(default=3, metadata={"help": "rounds of that check"})
    preset: str = field(default="auto", metadata={"help": "int8 preset: auto (from CPU flags), "
                                                  "avx512_vnni, avx512, avx2, arm64"})
    per_channel: bool = field(default=True, metadata={"help": "per-channel weight scales"})
    calibration_method: str = field(default="minmax",
                                    metadata={"help": "minmax, entropy or percentiles"})
    calibration_rows: int = field(default=300, metadata={"help": "training rows to calibrate"})
    calibration_max_length: int = field(default=64, metadata={"help": "fixed padded length of "
                                                              "calibration rows"})
    benchmark: bool = field(default=False, metadata={"help": "benchmark all against the model"})
    overwrite: bool = field(default=False, metadata={"help": "replace existing folders that "
                                                     "another step wrote (a variant folder "
                                                     "of the same step is always replaced)"})
