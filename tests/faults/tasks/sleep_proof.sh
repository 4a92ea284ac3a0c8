#!/bin/sh
# For the shutdown test. Like proof.sh, but records a SIGTERM as a "term" line, and sleeps
# $2 seconds only while the file $3 does not exist (so a rerun after the test can be quick).
echo "start $PHLASK_TASK_ID $PHLASK_ATTEMPT $PPID $$" >> "$1"
trap 'echo "term $PHLASK_TASK_ID $PHLASK_ATTEMPT $PPID $$" >> "$1"; exit 143' TERM
if [ ! -e "$3" ]; then
    sleep "$2" &
    wait $!
fi
echo "done $PHLASK_TASK_ID $PHLASK_ATTEMPT $PPID $$" >> "$1"
