"""One transform module per pipeline; each exposes ``TRANSFORM``."""
