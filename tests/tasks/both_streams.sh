# Write to stdout and stderr in turn, the last write without a trailing newline.
echo "out one"
echo "err one" >&2
echo "out two"
printf 'err two' >&2
