# Ignore SIGTERM (children inherit the ignored disposition) and run until SIGKILL.
# Once SIGTERM is ignored, print "ready" and, if $1 is given, create that file.
trap '' TERM
echo ready
if [ -n "$1" ]; then : >"$1"; fi
while :; do sleep 0.1; done
