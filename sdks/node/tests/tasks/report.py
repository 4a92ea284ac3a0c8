"""A Python task: writes what it received (argv, env, stdin) as JSON to PHLASK_RESULT_FILE,
which the runner stores as the attempt's result."""
import json
import os
import sys

stdin = sys.stdin.buffer.read().decode("utf-8")
with open(os.environ["PHLASK_RESULT_FILE"], "w", encoding="utf-8") as out:
    json.dump({
        "lang": "python",
        "args": [os.fsencode(a).decode("utf-8") for a in sys.argv[1:]],
        "greeting": os.environ.get("GREETING"),
        "stdin": stdin,
        "task_id": os.environ.get("PHLASK_TASK_ID"),
        "attempt": os.environ.get("PHLASK_ATTEMPT"),
        "queue": os.environ.get("PHLASK_QUEUE"),
    }, out, ensure_ascii=False)
