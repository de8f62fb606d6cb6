"""Locate: where a lineage lost diversity (`compare`) and how much of a loss was wrong answers removed (`decompose`)."""
