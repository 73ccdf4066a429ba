"""Rendering results: tables, JSON, CSV, Markdown, LaTeX, plots, catalog views."""
