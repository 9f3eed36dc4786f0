-- demo.sql: the seed's scenario in one SQL dialect, run by demo/demo.sh:
-- users in PostgreSQL, their preferences and profiles as MongoDB
-- documents, their sessions in Redis.  :PGDSN, :MGURI and :RDURL are
-- replaced by the script.
.load ./federate
.mode box
.print '-- 1. Three servers; no password in the file, ever'
SELECT fed_server('pg', 'postgres', ':PGDSN') AS relational,
       fed_server('mg', 'mongo',    ':MGURI') AS document,
       fed_server('rd', 'redis',    ':RDURL') AS key_value;
.print '-- 2. Every table of the PostgreSQL schema at once (IMPORT FOREIGN SCHEMA)'
SELECT fed_import('pg', 'shop') AS tables_created;
.print '-- 3. A collection and a key space as tables: declared columns map to document paths'
CREATE VIRTUAL TABLE prefs USING mongo(server=mg, collection='user_preferences',
  columns='user_id INTEGER $.user_id, theme TEXT $.theme,
           email INTEGER $.notifications.email, push INTEGER $.notifications.push,
           language TEXT $.language');
CREATE VIRTUAL TABLE profiles USING mongo(server=mg, collection='user_profiles',
  columns='username TEXT $.username, first_name TEXT $.profile.first_name,
           last_name TEXT $.profile.last_name');
CREATE VIRTUAL TABLE sessions USING redis(server=rd, prefix='session:', type=hash,
  fields='user_id integer, agent text');
SELECT name, type, pk FROM pragma_table_info('prefs');
.print '-- 4. The writes of the seed: a user (PostgreSQL) and its preferences (MongoDB) in one COMMIT, all or none; more preferences given whole; sessions (Redis)'
BEGIN;
INSERT INTO users(username, email, created_at)
  VALUES ('john_doe', 'john@example.com', '2024-01-15T10:30:00Z');
INSERT INTO prefs(_id, user_id, theme, email, push, language)
  SELECT 'prefs:john_doe', id, 'dark', 1, 0, 'en' FROM users WHERE username = 'john_doe';
COMMIT;
INSERT INTO prefs(user_id, doc)
  SELECT id, '{"theme": "light", "notifications": {"email": false}}' FROM users
   WHERE username = 'alice';
INSERT INTO sessions(key, user_id, agent)
  SELECT 'session:' || lower(hex(username)), id, 'firefox' FROM users
   WHERE username IN ('john_doe', 'alice');
SELECT _id, user_id, theme, email, push, language, doc FROM prefs ORDER BY user_id;
.print '-- 4b. All or none: the MongoDB insert fails at COMMIT (a duplicate _id), so the PostgreSQL insert is rolled back too'
BEGIN;
INSERT INTO users(username, email) VALUES ('mallory', 'mallory@example.com');
INSERT INTO prefs(_id, user_id, theme) SELECT 'prefs:john_doe', id, 'dark' FROM users WHERE username = 'mallory';
COMMIT;
SELECT count(*) AS mallory_in_postgres FROM users WHERE username = 'mallory';
.print '-- 5. One query across the three stores (the seed: active users, newest first, 10 a page)'
SELECT u.username, u.created_at, p.theme, p.language, s.agent
  FROM users u
  LEFT JOIN prefs p ON p.user_id = u.id
  LEFT JOIN sessions s ON s.user_id = u.id
 WHERE u.active ORDER BY u.created_at DESC LIMIT 10 OFFSET 0;
.print '-- 6. What each store was asked (pushdown is visible)'
DELETE FROM fed_explain;
SELECT u.username, p.theme FROM users u CROSS JOIN prefs p ON p.user_id = u.id
 WHERE u.username = 'john_doe';
SELECT _id, theme FROM prefs WHERE language >= 'a' AND theme LIKE 'da%';
SELECT server, command, rows FROM fed_explain;
.print '-- 7. The registration saga: each step commits on its own, compensations logged first'
SELECT fed_saga('user_registration', json('[
  {"do":   "INSERT INTO users(username, email, status) VALUES (''jane'', ''jane@example.com'', ''pending'')",
   "undo": "DELETE FROM users WHERE username = ''jane''"},
  {"do":   "INSERT INTO profiles(username, first_name, last_name) VALUES (''jane'', ''Jane'', ''Roe'')",
   "undo": "DELETE FROM profiles WHERE username = ''jane''"},
  {"do":   "INSERT INTO email_queue(\"to\", template) VALUES (''jane@example.com'', ''welcome'')"},
  {"do":   "UPDATE users SET status = ''active'' WHERE username = ''jane''"}]')) AS saga;
SELECT u.username, u.status, p.first_name, p.last_name
  FROM users u JOIN profiles p USING (username) ORDER BY u.username;
.print '-- 8. A saga that fails at step 3 (a bad address): steps 2 and 1 are compensated, in that order'
SELECT fed_saga('user_registration', json('[
  {"do":   "INSERT INTO users(username, email, status) VALUES (''joe'', ''joe-at-example'', ''pending'')",
   "undo": "DELETE FROM users WHERE username = ''joe''"},
  {"do":   "INSERT INTO profiles(username, first_name, last_name) VALUES (''joe'', ''Joe'', ''Bloggs'')",
   "undo": "DELETE FROM profiles WHERE username = ''joe''"},
  {"do":   "INSERT INTO email_queue(\"to\", template) VALUES (''joe-at-example'', ''welcome'')"},
  {"do":   "UPDATE users SET status = ''active'' WHERE username = ''joe''"}]'));
SELECT id, name, state FROM fed_sagas ORDER BY id;
SELECT saga, step, state FROM fed_saga_steps ORDER BY saga, step;
SELECT (SELECT count(*) FROM users WHERE username = 'joe') AS joe_in_postgres,
       (SELECT count(*) FROM profiles WHERE username = 'joe') AS joe_in_mongo;
.print '-- 9. Writes to two PostgreSQL tables in one transaction'
BEGIN;
INSERT INTO orders(user_id, amount) VALUES (1, 19.99), (2, 5.00);
UPDATE users SET active = 0 WHERE username = 'carol';
COMMIT;
SELECT u.username, count(o.id) AS orders, total(o.amount) AS spent
  FROM users u LEFT JOIN orders o ON o.user_id = u.id GROUP BY u.id ORDER BY u.id;
.print "-- 10. Pass-through, in PostgreSQL's own SQL"
SELECT row FROM fed_query('pg', 'SELECT user_id, sum(amount) AS total FROM shop.orders GROUP BY user_id ORDER BY 1');
.print '-- 11. A cached table: the second read is answered locally, nothing is sent'
CREATE VIRTUAL TABLE hot_users USING postgres(server=pg, table='shop.users', cache_ttl=300);
SELECT username FROM hot_users WHERE active ORDER BY username;
DELETE FROM fed_explain;
SELECT count(*) AS active_users FROM hot_users WHERE active;
SELECT count(*) AS commands_sent FROM fed_explain;
SELECT name, hits, misses, entries FROM fed_cache_stats;
