"""The cross-language conformance harness behind ``conformance/run``.

It drives every producer (Python, PHP, Node, Go) through its native driver in
``conformance/drivers/`` (one JSON request in, one JSON response out), checks each one's
validation verdicts and built envelopes against the shared vectors, has each enqueue real
tasks onto SQLite, MongoDB and RabbitMQ for a real ``phlask run`` to execute, checks what
every task received, and reports the matrix. See conformance/README.md, "The matrix".
"""
