#!/bin/sh
# Prints the limits the task runs under.
echo "nofile $(ulimit -n) cpu $(ulimit -t)"
