"""Reader components: how bits and keys arrive (Wiegand pins, OSDP bus, QR scanner)."""
