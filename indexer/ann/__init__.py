"""Approximate nearest-neighbour backends behind one `VectorIndex` protocol."""
