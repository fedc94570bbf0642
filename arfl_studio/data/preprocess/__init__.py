"""Preprocessing: orientation, breast crop, geometry (model <-> native space), display pyramid, cache."""
