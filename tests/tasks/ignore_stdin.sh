# Never read stdin; exit at once.
echo "not reading"
