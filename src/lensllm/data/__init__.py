"""Benchmarks: the format (`benchmark`), the offline builders (`builders`) with the parsers of the
raw sources (`scrapers`) that `corpora` fetches, ``datasets`` hub ids and folders (`hub`) and the
user's own files (`user`)."""
