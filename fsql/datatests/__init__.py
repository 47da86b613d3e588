"""Data tests (`fsql test`): declared in YAML, compiled to one SQL query each, run on the offline engine."""
