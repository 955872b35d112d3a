"""Benchmarks of the bot and the trainer; each script runs as `python benchmarks/NAME.py`."""
