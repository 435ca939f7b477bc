"""The extraction engine behind `extract.core`: a sans-IO generator and the two drivers that run it."""
