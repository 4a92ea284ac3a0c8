#!/bin/sh
# A shell task: arguments arrive verbatim ("$@"), never through a shell's parsing.
echo "shell cleanup of $# path(s) in queue ${PHLASK_QUEUE}:"
for p in "$@"; do printf '  would remove %s\n' "$p"; done
printf '{"lang": "shell", "paths": %d}\n' "$#" > "$PHLASK_RESULT_FILE"
