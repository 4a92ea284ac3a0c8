#!/bin/sh
# A fork bomb: every process starts two more, without end. The leader then becomes a
# sleep (exec: once the bomb holds every process it may have, a fork would fail), so only
# the runner's timeout (SIGTERM, then SIGKILL to the whole process group) can stop it.
# Run it only under a process limit it cannot lift (RLIMIT_NPROC for a non-root uid).
bomb() { bomb | bomb & }
bomb
exec sleep 600
