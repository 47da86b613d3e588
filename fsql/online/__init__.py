"""The Postgres online store: tables (DDL, migrations), materialization and lookups."""
