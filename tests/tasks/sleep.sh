# Sleep $1 seconds.
sleep "$1"
