"""Measure: run tasks through a backend into records (`run`), and the figures computed from them."""
