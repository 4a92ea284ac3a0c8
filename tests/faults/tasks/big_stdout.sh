#!/bin/sh
# Writes $1 bytes of zeros to stdout, then a last line the tail must end with.
head -c "$1" /dev/zero
echo
echo "end of a $1-byte stdout"
