#!/bin/sh
# A good task among bad input: records "ran <id>" in the file named by its first argument.
# Every other argument is ignored; they are there to exercise argv.
echo "ran $PHLASK_TASK_ID" >> "$1"
