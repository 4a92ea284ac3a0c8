#!/bin/sh
echo "attempt $PHLASK_ATTEMPT failing" >&2
exit "${1:-1}"
