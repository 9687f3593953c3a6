"""`python -m slimformer.memory_probe FOLDER KIND THREADS` < queries.json

Loads one variant in this fresh process, runs the queries one at a time and as one batch,
and prints the peak resident set size: what serving that variant costs in memory,
imports included (onnxruntime alone weighs far less than torch + optimum).
"""

import json
import resource
import sys

from slimformer.variants import variant_class


def main() -> None:
    folder, kind, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    queries = json.loads(sys.stdin.read())
    from pathlib import Path

    variant = variant_class(kind).load(Path(folder), "probe", threads)
    for query in queries:
        variant.predict_logits([query])
    variant.predict_logits(queries)
    print(json.dumps({"peak_rss_mb": peak_rss_kib() / 1024}))


def peak_rss_kib() -> float:
    """This process image's peak RSS. Not ru_maxrss: Linux carries that across exec, so a
    child forked from a big parent would report the parent's size."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


if __name__ == "__main__":
    main()
