"""Op groups. Every module here registers its ops in the op table on import."""
