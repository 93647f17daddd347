-- Run in each service database (as its owner or a superuser): the app user may read and write
-- rows of the tables the migrator creates, nothing else.
REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"DBNAME" TO dailyfeed_app;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO dailyfeed_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO dailyfeed_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO dailyfeed_app;
ALTER DEFAULT PRIVILEGES FOR ROLE dailyfeed_migrator IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO dailyfeed_app;
ALTER DEFAULT PRIVILEGES FOR ROLE dailyfeed_migrator IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO dailyfeed_app;
