# On SIGTERM, clean up and exit 3.
trap 'echo cleaning up; exit 3' TERM
echo ready
while :; do sleep 0.1; done
