"""The HTTP edge: protocol parsing, the message registry and generated documentation."""
