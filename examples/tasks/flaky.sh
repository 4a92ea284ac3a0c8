#!/bin/sh
# Fails on its first attempt, succeeds on the second: shows retries with backoff.
if [ "$PHLASK_ATTEMPT" -lt 2 ]; then echo "attempt $PHLASK_ATTEMPT: transient failure" >&2; exit 1; fi
echo "attempt $PHLASK_ATTEMPT: ok"
