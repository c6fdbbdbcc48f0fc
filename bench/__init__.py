"""``make bench``: throughput and memory of the hot path, on data it generates itself."""
