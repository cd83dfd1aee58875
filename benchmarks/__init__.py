"""Benchmarks behind `make bench`: each module has
`run(quick, out_dir) -> dict`; `benchmarks.run` measures them
side by side in one process run and writes BENCHMARKS.md with the machine, the date and the command."""
