<?php
// Print the memory_limit this PHP runs with (set by an adapter's -d option).
echo ini_get("memory_limit"), "\n";
