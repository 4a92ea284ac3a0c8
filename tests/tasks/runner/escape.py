"""Leaves a grandchild behind in a new session (outside the task's process group), then exits."""
import os
import subprocess
import sys

p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
with open(os.environ["RECORD"], "w") as f:
    f.write(str(p.pid))
