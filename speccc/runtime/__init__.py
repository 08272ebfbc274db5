"""Discrete-event runtime for speculative decoding schedules."""
