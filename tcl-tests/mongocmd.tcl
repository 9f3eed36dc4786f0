# mongocmd.tcl: mongo_command, for the tests of the MongoDB store's writes
# (mongowrite.test, txnmongo.test): one command on the test server,
# bypassing federate (an index, a change by "another client").

# mongo_command DB BODY: run one command (a Python dict display) on the
# test server, bypassing federate.
proc mongo_command {dbname body} {
  exec /usr/bin/python3 -c {
import socket, struct, sys, bson
port, db, body = int(sys.argv[1]), sys.argv[2], eval(sys.argv[3])
body['$db'] = db
msg = struct.pack("<I", 0) + b"\0" + bson.encode(body)
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(struct.pack("<iiii", 16 + len(msg), 1, 0, 2013) + msg)
hdr = b""
while len(hdr) < 16: hdr += s.recv(16 - len(hdr))
n = struct.unpack("<i", hdr[:4])[0] - 16
data = b""
while len(data) < n: data += s.recv(n - len(data))
r = bson.decode(data[5:])
if r.get("ok") != 1: sys.exit("mongo_command: %r" % (r,))
} $::env(FED_TEST_MONGO_PORT) $dbname $body
}
