"""Loopback servers for tests and demos: an OTLP/Langfuse receiver and an OpenAI-compatible fake."""
