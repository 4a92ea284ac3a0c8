#!/bin/sh
# Marks start and end with a nanosecond clock, so a test can measure how many ran at once.
echo "S $(date +%s%N) $$" >> "$RECORD"
sleep 0.05
echo "E $(date +%s%N) $$" >> "$RECORD"
