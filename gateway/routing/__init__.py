"""The pure routing core: data in, decision out. No I/O and no clock reads here."""
