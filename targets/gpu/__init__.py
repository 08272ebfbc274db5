"""The GPU target: a roofline over a system's [gpu] figures (speccc.hw.system)."""
