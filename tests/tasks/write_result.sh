# Write a result file in the way named by $1 to $PHLASK_RESULT_FILE.
f=$PHLASK_RESULT_FILE
case "$1" in
    ok)      printf '{"rows": 1200, "name": "na\303\257ve"}\n' >"$f" ;;
    null)    printf 'null' >"$f" ;;
    empty)   : >"$f" ;;
    bad)     printf '{"rows": 12' >"$f" ;;
    nan)     printf '{"x": NaN}' >"$f" ;;
    big)     # one byte over 1 MiB: a JSON string of 1048575 characters plus two quotes
             { printf '"'; head -c 1048575 /dev/zero | tr '\0' a; printf '"'; } >"$f" ;;
    exact)   { printf '"'; head -c 1048574 /dev/zero | tr '\0' a; printf '"'; } >"$f" ;;
    symlink) ln -s /etc/hostname "$f" ;;
    fifo)    mkfifo "$f" ;;
    none)    ;;
esac
