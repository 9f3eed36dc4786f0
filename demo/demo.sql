-- demo.sql: a short tour of federate, run by demo/demo.sh against a
-- throwaway PostgreSQL.  :PGDSN is replaced by the script.
.load ./federate
.mode box
.print '-- 1. Register a server: no password in the file, ever'
SELECT fed_server('pg', 'postgres', ':PGDSN') AS server;
.print '-- 2. Import every table of the remote schema (IMPORT FOREIGN SCHEMA)'
SELECT fed_import('pg', 'shop') AS tables_created;
SELECT name, remote FROM fed_tables ORDER BY name;
.print '-- 3. One dialect: join a remote table with a local one'
CREATE TABLE local_notes(user_id INTEGER, note TEXT);
INSERT INTO local_notes VALUES (1, 'prefers e-mail'), (3, 'VIP');
SELECT u.id, u.username, u.created_at, n.note
  FROM users u LEFT JOIN local_notes n ON n.user_id = u.id
 WHERE u.active AND u.username LIKE '%a%' ORDER BY u.id LIMIT 10;
.print '-- 4. The exact remote SQL that ran (pushdown is visible)'
SELECT command, params, rows FROM fed_explain WHERE command LIKE 'SELECT%users%';
DELETE FROM fed_explain;
.print '-- 5. Writes in one transaction, committed remotely'
BEGIN;
INSERT INTO orders(user_id, amount) VALUES (1, 19.99), (2, 5.00);
UPDATE users SET active = 0 WHERE username = 'carol';
COMMIT;
SELECT command, params FROM fed_explain;
SELECT u.username, count(o.id) AS orders, total(o.amount) AS spent
  FROM users u LEFT JOIN orders o ON o.user_id = u.id GROUP BY u.id ORDER BY u.id;
.print "-- 6. Pass-through, in PostgreSQL's own SQL"
SELECT row FROM fed_query('pg', 'SELECT user_id, sum(amount) AS total FROM shop.orders GROUP BY user_id ORDER BY 1');
.print '-- 7. A cached table: the second read is answered locally, nothing is sent'
CREATE VIRTUAL TABLE hot_users USING postgres(server=pg, table='shop.users', cache_ttl=300);
SELECT username FROM hot_users WHERE active ORDER BY username;
DELETE FROM fed_explain;
SELECT count(*) AS active_users FROM hot_users WHERE active;
SELECT count(*) AS commands_sent FROM fed_explain;
SELECT name, hits, misses, entries FROM fed_cache_stats;
