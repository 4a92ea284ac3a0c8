# Start two background children and a grandchild; write their pids to $1, one a line.
# $2 = exit: the leader exits at once, leaving them behind; wait: it waits forever.
pidfile=$1
sleep 1000 &
echo $! >>"$pidfile"
sleep 1000 &
echo $! >>"$pidfile"
sh -c 'sleep 1000 & echo $! >>"$1"; wait' grandchild "$pidfile" &
echo $! >>"$pidfile"
# Wait until the grandchild has written its pid too.
while [ "$(wc -l <"$pidfile")" -lt 4 ]; do sleep 0.01; done
echo started
if [ "$2" = wait ]; then wait; fi
