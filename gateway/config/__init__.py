"""The installer's YAML: loading with positions, models, relations, secrets."""
