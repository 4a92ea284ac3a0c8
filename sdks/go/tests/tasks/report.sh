# Write what this task received, as JSON, to $PHLASK_RESULT_FILE: its arguments, the
# GREETING variable, its task id and its stdin. POSIX sh has no JSON encoder, so each
# string is written as the hex of its bytes, which survives any byte the SDK sent.
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
{
    printf '{"lang":"shell","args_hex":['
    sep=''
    for arg in "$@"; do
        printf '%s"%s"' "$sep" "$(hex "$arg")"
        sep=','
    done
    printf '],"greeting_hex":"%s","task_id":"%s",' "$(hex "${GREETING-}")" "$PHLASK_TASK_ID"
    printf '"stdin_hex":"%s"}' "$(od -An -v -tx1 | tr -d ' \n')"
} > "$PHLASK_RESULT_FILE"
