"""Print what this task received, as JSON: args, stdin, environment, working directory."""
import json
import os
import sys

print(json.dumps({
    "lang": "python",
    "args": sys.argv[1:],
    "stdin": sys.stdin.buffer.read().decode("utf-8", "replace"),
    "env": dict(os.environ),
    "cwd": os.getcwd(),
}))
