"""The exact analyzers, one module per measure.

- `density`: layerwise knot insertion along segments (`trace_segments`, `midpoint_check`).
- `walk`: the sequential reference walk (`walk_segment`), an independent code path for tests.
- `deviation`: exact absolute deviation per output (`absolute_deviation`, `deviation_norm`).
- `distance`: distance to the activation region's boundary (`boundary_distances`).
- `stats`: `summary` and `spearman` with numpy only.
"""
