"""Gates: what decides exit code 1, and the comparisons the gates read.

`catalogue` (which dotted paths of a result hold a metric, and why one is null), `numbers` (exact
comparison and formatting), `thresholds` (`--fail-if`), `baseline` (`--baseline`,
`--max-increase`), `paired` (B − A per segment for `regionaudit compare`), `junit` (`--junit`).
"""
