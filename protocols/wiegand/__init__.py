"""Wiegand: card formats, card data conversion, the edge decoder and keypress formats (sans-IO)."""
