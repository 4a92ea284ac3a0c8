"""Starts a `sleep` in a session (and process group) of its own, prints its pid, and then
exits 0 at once, or with "stay" keeps running until the runner's timeout stops it.

Only a runner that is a child subreaper can find the escapee once this process is gone.
"""
import os
import subprocess
import sys
import time

child = subprocess.Popen(["sleep", "600"], start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"escapee {child.pid} pgid {os.getpgid(child.pid)} mine {os.getpgid(0)}", flush=True)
if sys.argv[1:] == ["stay"]:
    time.sleep(600)
os._exit(0)
