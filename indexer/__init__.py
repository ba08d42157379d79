"""Offline side of searchrec: read corpora, analyse text, build indices and write versioned artifacts."""
