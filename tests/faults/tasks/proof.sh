#!/bin/sh
# The chaos task. Appends "start" and "done" lines to the proof file $1, sleeping $2
# seconds in between. Each line is one short O_APPEND write, so lines from many processes
# never interleave. $PPID is the runner that started the task: a second "start" of the
# same id can then be traced to the runner that was killed under the first.
echo "start $PHLASK_TASK_ID $PHLASK_ATTEMPT $PPID $$" >> "$1"
[ "${2:-0}" = 0 ] || sleep "$2"
echo "done $PHLASK_TASK_ID $PHLASK_ATTEMPT $PPID $$" >> "$1"
