#!/usr/bin/env python3
"""faultproxy.py: a TCP proxy for fault tests (python3, standard library only).

    python3 faultproxy.py --target HOST:PORT [--lifetime SECONDS]

Listens on a free port of 127.0.0.1, forwards every connection to the
target, and prints one line "<proxy port> <control port>" when ready.  It
exits when its standard input closes (the test that started it with
`open |python3 ... r+` ended, or died) or after --lifetime seconds
(default 600), whichever comes first.

The control port takes one command a line and answers one line ("ok", or
the value asked for).  A fault is armed once: the first request (data from
a client) that contains PATTERN fires it on that connection, and the proxy
then passes everything else again (a fresh connection, as recovery makes,
goes through).

    pass                 disarm; faults already fired stay on their
                         connections
    drop PATTERN         forward the request, then drop every reply of that
                         connection (the server applied it; the client
                         never hears: "reply lost after applying")
    hold PATTERN         drop the request and everything after it on that
                         connection (the server never sees it: "request
                         lost before applying")
    cut PATTERN          forward the request, then reset the client's
                         connection (RST) at once; the server side is
                         closed normally a moment later ("connection
                         reset")
    stall PATTERN MS     hold the request MS milliseconds, then forward it
                         (and everything after it on that connection)
    dropbytes N          forward N more bytes of replies (all connections
                         together), then drop the replies of the connection
                         that went past them
    delay MS             delay every reply by MS milliseconds (0: none)
    fired                how many faults fired since the start
    quit                 exit now

With FAULTPROXY_LOG=FILE in the environment, every chunk it passes is
logged there (for debugging a test).

PATTERN is taken literally (bytes, no spaces): "EXEC", "/v3/kv/txn".
"""
import argparse
import os
import socket
import struct
import sys
import threading
import time

lock = threading.Lock()
state = {"mode": "pass", "pattern": b"", "delay": 0.0, "bytes": -1,
         "fired": 0, "stall": 0.0}


LOG = os.environ.get("FAULTPROXY_LOG")
nconn = [0]


def log(*args):
    if LOG:
        with open(LOG, "a") as f:
            f.write("%.3f " % time.time() + " ".join(str(a) for a in args) + "\n")


class Conn:
    def __init__(self, client, server):
        nconn[0] += 1
        self.id = nconn[0]
        self.client = client
        self.server = server
        self.drop = False       # replies are dropped
        self.hold = False       # requests are dropped


def reset(sock):
    """Close with RST: SO_LINGER on, timeout 0."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def close_later(sock, seconds):
    def run():
        time.sleep(seconds)
        try:
            sock.close()
        except OSError:
            pass
    threading.Thread(target=run, daemon=True).start()


def upstream(conn):
    """Client to server, where the faults fire."""
    tail = b""
    while True:
        try:
            data = conn.client.recv(65536)
        except OSError:
            data = b""
        if not data:
            try:
                conn.server.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return
        log("up", conn.id, len(data), data[:60])
        if conn.hold:
            continue
        fire = None
        with lock:
            pat = state["pattern"]
            stall = state["stall"]
            if state["mode"] in ("drop", "hold", "cut", "stall") and pat \
                    and pat in tail + data:
                fire = state["mode"]
                state["mode"] = "pass"
                state["pattern"] = b""
                state["fired"] += 1
        if pat:
            tail = (tail + data)[-(len(pat) - 1):] if len(pat) > 1 else b""
        if fire == "hold":
            conn.hold = True
            continue
        if fire == "stall":
            time.sleep(stall)
        if fire in ("drop", "cut"):
            conn.drop = True    # before sending: the reply may come at once
        try:
            conn.server.sendall(data)
        except OSError:
            return
        if fire == "cut":
            reset(conn.client)
            close_later(conn.server, 0.5)
            return


def downstream(conn):
    """Server to client: replies, delayed or dropped."""
    while True:
        try:
            data = conn.server.recv(65536)
        except OSError:
            data = b""
        if not data:
            try:
                conn.client.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return
        log("down", conn.id, len(data), conn.drop, data[:40])
        with lock:
            delay = state["delay"]
            if conn.drop:
                data = b""
            elif state["bytes"] >= 0:
                if len(data) > state["bytes"]:
                    data = data[:state["bytes"]]
                    conn.drop = True
                    state["bytes"] = -1
                    state["fired"] += 1
                else:
                    state["bytes"] -= len(data)
        if delay > 0:
            time.sleep(delay)
        try:
            if data:
                conn.client.sendall(data)
        except OSError:
            return
        if conn.drop:
            # Keep reading (and dropping) until the server closes.
            while True:
                try:
                    if not conn.server.recv(65536):
                        return
                except OSError:
                    return


def accept_loop(listener, target):
    while True:
        client, _ = listener.accept()
        try:
            server = socket.create_connection(target, timeout=5)
            server.settimeout(None)
        except OSError:
            reset(client)
            continue
        conn = Conn(client, server)
        threading.Thread(target=upstream, args=(conn,), daemon=True).start()
        threading.Thread(target=downstream, args=(conn,), daemon=True).start()


def control(sock):
    f = sock.makefile("rwb", buffering=0)
    for line in f:
        words = line.decode("latin-1").split()
        if not words:
            continue
        cmd, args = words[0], words[1:]
        answer = "ok"
        with lock:
            if cmd == "pass":
                state.update(mode="pass", pattern=b"", bytes=-1)
            elif cmd in ("drop", "hold", "cut") and len(args) == 1:
                state.update(mode=cmd, pattern=args[0].encode("latin-1"))
            elif cmd == "stall" and len(args) == 2:
                state.update(mode="stall", pattern=args[0].encode("latin-1"),
                             stall=int(args[1]) / 1000.0)
            elif cmd == "dropbytes" and len(args) == 1:
                state["bytes"] = int(args[0])
            elif cmd == "delay" and len(args) == 1:
                state["delay"] = int(args[0]) / 1000.0
            elif cmd == "fired":
                answer = str(state["fired"])
            elif cmd == "quit":
                os._exit(0)
            else:
                answer = "error: unknown command " + " ".join(words)
        f.write((answer + "\n").encode())


def control_loop(listener):
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=control, args=(sock,), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--lifetime", type=float, default=600)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    target = (host, int(port))
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    ctl = socket.socket()
    ctl.bind(("127.0.0.1", 0))
    ctl.listen(4)
    threading.Thread(target=accept_loop, args=(listener, target),
                     daemon=True).start()
    threading.Thread(target=control_loop, args=(ctl,), daemon=True).start()
    sys.stdout.write("%d %d\n" % (listener.getsockname()[1],
                                  ctl.getsockname()[1]))
    sys.stdout.flush()

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        os._exit(0)
    threading.Thread(target=watch_stdin, daemon=True).start()
    time.sleep(a.lifetime)
    os._exit(0)


if __name__ == "__main__":
    main()
