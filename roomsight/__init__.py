"""roomsight's shared kernel: configuration, the data directory, stores and formats that cross packages.

Everything here sits at a boundary several packages meet at: the validated settings, the SQL tables,
the exported-model format, the MLflow registry, safe image decoding, the binomial bounds
(`roomsight.binomial`) and the error tree every package raises from (`roomsight.errors`). It imports none of
`training`, `serving`, `rollout` or `monitoring`, so they can all depend on it without cycles.
"""
