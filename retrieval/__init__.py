"""Online side of searchrec: load artifacts, run recall branches, merge them."""
