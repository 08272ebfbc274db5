"""Registers `sym_dims` (defined beside the folding logic that produces it)."""
import speccc.ir.folding  # noqa: F401
