"""A Python task: reads numbers from its JSON input and reports their statistics."""
import json
import os
import statistics
import sys

numbers = json.load(sys.stdin)["numbers"]
summary = {"lang": "python", "n": len(numbers), "mean": statistics.mean(numbers), "max": max(numbers)}
print(f"python stats: {summary}")
with open(os.environ["PHLASK_RESULT_FILE"], "w") as f:
    json.dump(summary, f)
