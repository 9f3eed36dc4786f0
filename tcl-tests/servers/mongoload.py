#!/usr/bin/python3
# mongoload.py: the tests' way to put documents into a MongoDB server while
# the store cannot write yet (tcl-tests/mongo*.test, through mongo.tcl).
#
#   mongoload.py PORT DB COLL   < lines
#
# Each line of stdin is one Python expression giving a document, with the
# BSON types in scope (Int64, Decimal128, ObjectId, Binary, Regex,
# Timestamp, MinKey, MaxKey, Code, datetime, timezone, nan, inf).  The
# collection is dropped first.  Sends OP_MSG drop and insert commands with
# python3-bson; Debian's /usr/bin/python3 has it (no pymongo here).
import math, socket, struct, sys, datetime as _dt
import bson
from bson import Int64, Decimal128, ObjectId, Binary, Regex, Timestamp, Code
from bson.min_key import MinKey
from bson.max_key import MaxKey

def call(sock, body, rid=[1]):
    msg = struct.pack("<I", 0) + b"\0" + bson.encode(body)
    rid[0] += 1
    sock.sendall(struct.pack("<iiii", 16 + len(msg), rid[0], 0, 2013) + msg)
    hdr = b""
    while len(hdr) < 16:
        hdr += sock.recv(16 - len(hdr))
    n = struct.unpack("<i", hdr[:4])[0] - 16
    data = b""
    while len(data) < n:
        data += sock.recv(n - len(data))
    return bson.decode(data[5:])

def main():
    port, db, coll = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    env = dict(Int64=Int64, Decimal128=Decimal128, ObjectId=ObjectId,
               Binary=Binary, Regex=Regex, Timestamp=Timestamp, Code=Code,
               MinKey=MinKey, MaxKey=MaxKey, datetime=_dt.datetime,
               timezone=_dt.timezone, nan=math.nan, inf=math.inf)
    docs = [eval(line, env) for line in sys.stdin if line.strip()]
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    call(s, {"drop": coll, "$db": db})
    for i in range(0, len(docs), 500):
        r = call(s, {"insert": coll, "documents": docs[i:i+500], "$db": db})
        if r.get("ok") != 1 or r.get("writeErrors"):
            sys.exit("mongoload: %r" % (r,))
    s.close()

main()
