#!/bin/sh
# Writes a JSON string of $1 characters (plus its two quotes) to the result file, exits 0.
printf '"' > "$PHLASK_RESULT_FILE"
head -c "$1" /dev/zero | tr '\0' x >> "$PHLASK_RESULT_FILE"
printf '"' >> "$PHLASK_RESULT_FILE"
echo "wrote a result file of $(($1 + 2)) bytes"
