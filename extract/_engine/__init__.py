"""The extraction engine behind `extract.core`: a sans-IO generator and the two drivers that run it.

Kept free of imports here so that `extract.modes` can use `extract._engine.results` without a cycle.
"""
