"""Write what this task received, as JSON, to $PHLASK_RESULT_FILE: its arguments, the
GREETING variable, its task id and its stdin."""
import json
import os
import sys

with open(os.environ["PHLASK_RESULT_FILE"], "w", encoding="utf-8") as f:
    json.dump({
        "lang": "python",
        "args": sys.argv[1:],
        "greeting": os.environ.get("GREETING"),
        "task_id": os.environ.get("PHLASK_TASK_ID"),
        "stdin": sys.stdin.buffer.read().decode("utf-8"),
    }, f, ensure_ascii=False)
