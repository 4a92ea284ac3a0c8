#!/bin/sh
# Records that it started, sleeps $1 seconds, records that it finished.
echo "start $PHLASK_TASK_ID $PHLASK_ATTEMPT $$" >> "$RECORD"
sleep "$1"
echo "done $PHLASK_TASK_ID $PHLASK_ATTEMPT" >> "$RECORD"
