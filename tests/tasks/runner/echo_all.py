"""Writes everything it received (args, env, stdin) as the task's JSON result."""
import json
import os
import sys

data = {"args": sys.argv[1:], "env": dict(os.environ), "stdin": sys.stdin.read()}
with open(os.environ["PHLASK_RESULT_FILE"], "w") as f:
    json.dump(data, f)
