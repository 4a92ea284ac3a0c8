# Conformance proof task (see README.md): append one JSON line to $CONFORMANCE_PROOF.
# Strings are written as the hex of their bytes: POSIX sh has no JSON encoder.
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
opt() { if [ "$1" = set ]; then printf '"%s"' "$(hex "$2")"; else printf null; fi; }
line='{"lang":"shell","argv_hex":['
sep=''
for arg in "$@"; do
    line="$line$sep\"$(hex "$arg")\""
    sep=','
done
line="$line],\"text_hex\":$(opt "${CONFORMANCE_TEXT+set}" "${CONFORMANCE_TEXT-}")"
line="$line,\"leak_hex\":$(opt "${CONFORMANCE_RUNNER_ONLY+set}" "${CONFORMANCE_RUNNER_ONLY-}")"
line="$line,\"stdin_hex\":\"$(od -An -v -tx1 | tr -d ' \n')\""
line="$line,\"task_id\":\"$PHLASK_TASK_ID\",\"attempt\":\"$PHLASK_ATTEMPT\",\"queue\":\"$PHLASK_QUEUE\"}"
printf '%s\n' "$line" >> "$CONFORMANCE_PROOF"
