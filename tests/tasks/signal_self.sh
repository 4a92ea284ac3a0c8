# Kill this shell with the signal named in $1 (SEGV, KILL, ...).
kill -s "$1" $$
sleep 5
