"""Storage of the entry list: schema and migrations, field validation, CSV, the store."""
