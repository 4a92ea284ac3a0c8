#!/bin/sh
# A fork bomb: every process starts two more, without end. The leader then waits, so only
# the runner's timeout (SIGTERM, then SIGKILL to the whole process group) can stop it.
# Run it only under a process limit it cannot lift (RLIMIT_NPROC for a non-root uid).
bomb() { bomb | bomb & }
bomb
sleep 600
