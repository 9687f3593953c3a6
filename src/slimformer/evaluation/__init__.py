"""Measuring variants side by side: the benchmark, its environment and its reports."""
