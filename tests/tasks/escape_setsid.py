"""Leave behind a descendant in its own session that keeps stdout and stderr open.

Prints the escapee's pid. Its process group differs from the task's, so only a
subreaper's orphan sweep can find it; the supervisor must not wait for it to close the pipes.
"""
import os
import subprocess
import sys

child = subprocess.Popen(["sleep", sys.argv[1] if len(sys.argv) > 1 else "1000"],
                         start_new_session=True)
print(child.pid, flush=True)
os._exit(0)
