"""The spend page: server-side HTML and SVG charts, no scripts or assets from a CDN."""
