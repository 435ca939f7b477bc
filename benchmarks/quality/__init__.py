"""A labelled evaluation set for extract.evaluate: gold records rendered into realistic documents (see
dataset.py), and the schemas they are extracted with."""
