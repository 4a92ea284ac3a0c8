# shellcheck shell=bash
# Shared helpers for scripts/system-deps and scripts/services.
# Source it; it does not change shell options of the caller beyond what is set here.

# Absolute repo root (parent of scripts/), independent of the caller's cwd.
PHLASK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PHLASK_VAR="$PHLASK_ROOT/var"

log()  { printf '[%s] %s\n' "${PHLASK_LOG_TAG:-phlask}" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "${PHLASK_LOG_TAG:-phlask}" "$*" >&2; }
die()  { printf '[%s] ERROR: %s\n' "${PHLASK_LOG_TAG:-phlask}" "$*" >&2; exit 1; }

# now_s: seconds since epoch with sub-second precision (for timing output).
now_s() { date +%s.%N; }

# elapsed START: seconds elapsed since START (from now_s), one decimal.
elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

# tcp_open HOST PORT: true if something accepts a TCP connection.
tcp_open() {
    (exec 3<>"/dev/tcp/$1/$2") >/dev/null 2>&1
}

# pid_alive PIDFILE: true if the pid file names a live process.
pid_alive() {
    local pid
    [[ -s "$1" ]] || return 1
    pid="$(cat "$1" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null
}

# show_log_tail FILE [N]: print the last N lines of a log to stderr.
show_log_tail() {
    local f="$1" n="${2:-40}"
    if [[ -f "$f" ]]; then
        printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
        tail -n "$n" "$f" >&2
        printf -- '----- end of %s -----\n' "$f" >&2
    else
        printf -- '(no log file %s)\n' "$f" >&2
    fi
}
