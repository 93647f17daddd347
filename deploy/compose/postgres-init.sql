-- First start of the compose Postgres: one database per service, owned by the DDL user that
-- runs migrations; the services connect as a DML-only user (seeds/004 "DB 사용자 권한 최소화":
-- SELECT/INSERT/UPDATE/DELETE, no CREATE/ALTER/DROP). docs/operations.md has the same
-- statements for a real cluster. Passwords here are for the local stack only.
CREATE ROLE dailyfeed_migrator LOGIN PASSWORD 'migrator-dev-only';
CREATE ROLE dailyfeed_app LOGIN PASSWORD 'app-dev-only';

CREATE DATABASE dailyfeed_member OWNER dailyfeed_migrator;
CREATE DATABASE dailyfeed_content OWNER dailyfeed_migrator;
CREATE DATABASE dailyfeed_timeline OWNER dailyfeed_migrator;
CREATE DATABASE dailyfeed_image OWNER dailyfeed_migrator;

\connect dailyfeed_member
\i /dailyfeed-sql/grant-app.sql
\connect dailyfeed_content
\i /dailyfeed-sql/grant-app.sql
\connect dailyfeed_timeline
\i /dailyfeed-sql/grant-app.sql
\connect dailyfeed_image
\i /dailyfeed-sql/grant-app.sql
