"""One picture of every load test under a folder: p99 against requests/s (serving.png)."""

import json
import sys
from pathlib import Path

from slimformer.evaluation.loadtest_report import plot

folder = Path(sys.argv[1])
results = [json.loads(p.read_text()) for p in sorted(folder.glob("*/loadtest.json"))]
plot([r for r in results if len(r["levels"]) > 1], folder / "serving.png")
print(folder / "serving.png")
