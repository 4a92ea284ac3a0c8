# Print each argument followed by a NUL byte, then copy stdin (POSIX sh has no JSON).
printf '%s\0' "$@"
cat
