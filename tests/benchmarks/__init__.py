"""The benchmarks' own arithmetic (the measurements themselves run in ``benchmarks/``)."""
