"""Per-domain policies: the schema and one YAML file per domain."""
