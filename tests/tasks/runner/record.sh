#!/bin/sh
# Appends "<task id> <attempt>" to $RECORD (an env entry), so tests can count runs.
echo "$PHLASK_TASK_ID $PHLASK_ATTEMPT" >> "$RECORD"
