# Read stdin until EOF; hangs forever unless stdin reaches EOF.
cat >/dev/null
echo "stdin closed"
