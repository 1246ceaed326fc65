"""Speed and memory of the exact analyzers, measured as ratios within one run.

`python -m regionaudit.bench` (or `benchmarks/run.py`) prints a table and writes JSON: per model
and measure the regions found, time, regions per second, the FLOP bound and the ratio to it, the
layerwise analysis against the reference walk on the same segments, float64 against float32, CPU
against CUDA when a GPU is present, and peak memory. See the README's "Benchmarks" section.
"""
