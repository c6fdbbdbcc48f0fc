-- Run once by the postgres image on an empty data volume: the ledger gets its own database
-- beside Dagster's (POSTGRES_DB=dagster). `connector db upgrade` creates its tables.
CREATE DATABASE connector OWNER dagster;
