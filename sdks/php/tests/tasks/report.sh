# Write what this task received to $PHLASK_RESULT_FILE as JSON. POSIX sh has no JSON
# encoder, so every value is written as the hex of its exact bytes (od), which the test
# decodes: the arguments, the GREETING variable, stdin and the PHLASK_* variables.
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

{
    printf '{"lang":"shell","args_hex":['
    sep=
    for arg in "$@"; do
        printf '%s"%s"' "$sep" "$(hex "$arg")"
        sep=,
    done
    printf '],"greeting_hex":"%s"' "$(hex "${GREETING-}")"
    printf ',"stdin_hex":"%s"' "$(od -An -v -tx1 | tr -d ' \n')"
    printf ',"task_id":"%s","queue":"%s","attempt":"%s"}' "$PHLASK_TASK_ID" "$PHLASK_QUEUE" "$PHLASK_ATTEMPT"
} >"$PHLASK_RESULT_FILE"
