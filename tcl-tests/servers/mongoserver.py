#!/usr/bin/python3
"""mongoserver.py: a throwaway MongoDB test server for federate's tests.

    /usr/bin/python3 mongoserver.py --port P [--max-seconds 3600]

A MongoDB wire-protocol front end (OP_MSG, and OP_QUERY for the first
hello/isMaster) over Debian's python3-mongomock, an in-memory engine with
MongoDB's query semantics, with BSON from python3-bson.  It reports itself
as a standalone mongod 5.0 (maxWireVersion 13).  Data lives in memory only:
a restart comes back empty.  One global lock serialises every command.
Exits on SIGTERM/SIGINT and by itself after --max-seconds, so that it never
outlives a test run.  Run it with Debian's /usr/bin/python3 (the modules are
Debian packages).  See docs/mongo-testserver.md.
"""
import argparse
import datetime
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time

import bson
from bson import Int64, ObjectId, SON
from bson.codec_options import CodecOptions
from bson.binary import UuidRepresentation
import mongomock
from mongomock import filtering, helpers

# Binary subtypes 3 and 4 stay Binary (no uuid.UUID conversion that would
# change the subtype on the way back); dates are naive UTC datetimes.
CODEC = CodecOptions(uuid_representation=UuidRepresentation.UNSPECIFIED)

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
MAX_BSON = 16 * 1024 * 1024
MAX_MSG = 48000000
MAX_WIRE = 13                       # MongoDB 5.0

# ---------------------------------------------------------------------------
# Without pymongo, mongomock uses its own ObjectId class and no Timestamp:
# point its modules at bson's, which is what the decoder produces.
for _m in list(sys.modules.values()):
    if getattr(_m, '__name__', '').startswith('mongomock'):
        if getattr(_m, 'ObjectId', None) is not None and _m.ObjectId is not ObjectId:
            _m.ObjectId = ObjectId
        if hasattr(_m, 'Timestamp') and _m.Timestamp is None:
            _m.Timestamp = bson.Timestamp

# mongomock fixes: exact numeric $type (int32 vs int64), the $type aliases
# mongomock leaves unimplemented, numeric $type codes, and $mod.

TM = filtering.TYPE_MAP
TM['int'] = lambda v: (isinstance(v, int) and not isinstance(v, (bool, Int64))
                       and -2**31 <= v < 2**31)
TM['long'] = lambda v: (isinstance(v, Int64) or (
    isinstance(v, int) and not isinstance(v, bool) and not -2**31 <= v < 2**31))
TM['null'] = lambda v: v is None
# bson decodes a symbol as str, a DBPointer as a DBRef and undefined as
# None: mongomock never holds one, so nothing has those types.
TM['symbol'] = lambda v: False
TM['dbPointer'] = lambda v: False
TM['undefined'] = lambda v: False
TM['regex'] = lambda v: isinstance(v, (bson.Regex, re.Pattern))
TM['timestamp'] = lambda v: isinstance(v, bson.Timestamp)
TM['minKey'] = lambda v: isinstance(v, bson.MinKey)
TM['maxKey'] = lambda v: isinstance(v, bson.MaxKey)
TM['javascript'] = lambda v: isinstance(v, bson.Code) and v.scope is None
TM['javascriptWithScope'] = lambda v: isinstance(v, bson.Code) and v.scope is not None
TM['objectId'] = lambda v: isinstance(v, ObjectId)
TM['binData'] = lambda v: isinstance(v, (bytes, bson.Binary))
TYPE_CODES = {1: 'double', 2: 'string', 3: 'object', 4: 'array', 5: 'binData',
              7: 'objectId', 8: 'bool', 9: 'date', 10: 'null', 11: 'regex',
              13: 'javascript', 15: 'javascriptWithScope', 16: 'int',
              17: 'timestamp', 18: 'long', 19: 'decimal', -1: 'minKey',
              127: 'maxKey'}
_orig_type_op = filtering._type_op


def _type_op(doc_val, search_val, in_array=False):
    if isinstance(search_val, list):
        return any(_type_op(doc_val, s, in_array) for s in search_val)
    if isinstance(search_val, (int, float)) and not isinstance(search_val, bool):
        if int(search_val) not in TYPE_CODES:
            raise mongomock.OperationFailure('Invalid numerical type code: %s' % search_val)
        search_val = TYPE_CODES[int(search_val)]
    if doc_val is filtering.NOTHING:
        return False
    return _orig_type_op(doc_val, search_val, in_array)


def _mod_op(doc_val, search_val):
    if (not isinstance(search_val, list) or len(search_val) != 2):
        raise mongomock.OperationFailure('malformed mod, needs to be an array')
    div, rem = int(search_val[0]), int(search_val[1])
    if div == 0:
        raise mongomock.OperationFailure('divisor cannot be 0')
    vals = doc_val if isinstance(doc_val, list) else [doc_val]
    for v in vals:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            q = int(v)
            if q - div * int(q / div) == rem:      # truncating, like C
                return True
    return False


# BSON comparison order for the types mongomock does not know, and
# Decimal128 compared as a number (mongomock raised NotImplementedError).
import decimal     # noqa: E402
import math        # noqa: E402
from bson.decimal128 import Decimal128   # noqa: E402
_orig_ctype = filtering._get_compare_type
_orig_bson_compare = filtering.bson_compare


def _ctype(v):
    if isinstance(v, bson.MinKey):
        return 1
    if isinstance(v, bson.MaxKey):
        return 127
    if isinstance(v, Decimal128):
        return 10
    if isinstance(v, bson.Timestamp):
        return 47
    if isinstance(v, bson.Code):
        return 60
    return _orig_ctype(v)


def _isnan(v):
    if isinstance(v, float):
        return math.isnan(v)
    if isinstance(v, decimal.Decimal):
        return v.is_nan()
    return False


def _bson_compare(op, a, b, can_compare_types=True):
    if isinstance(a, Decimal128):
        a = a.to_decimal()
    if isinstance(b, Decimal128):
        b = b.to_decimal()
    if _ctype(a) == 10 and _ctype(b) == 10 and (_isnan(a) or _isnan(b)):
        return op(0 if _isnan(a) else 1, 0 if _isnan(b) else 1)   # NaN lowest
    if isinstance(a, (bson.MinKey, bson.MaxKey)) or isinstance(b, (bson.MinKey, bson.MaxKey)):
        return op(_ctype(a), _ctype(b)) if can_compare_types or _ctype(a) == _ctype(b) else False
    if isinstance(a, bson.Timestamp) and isinstance(b, bson.Timestamp):
        return op((a.time, a.inc), (b.time, b.inc))
    return _orig_bson_compare(op, a, b, can_compare_types)


filtering._get_compare_type = _ctype
filtering.bson_compare = _bson_compare


def _dec_eq(self, other):
    if isinstance(other, Decimal128):
        other = other.to_decimal()
    if isinstance(other, (int, float, decimal.Decimal)) and not isinstance(other, bool):
        try:
            return self.to_decimal() == other
        except decimal.InvalidOperation:
            return False
    return NotImplemented


Decimal128.__eq__ = _dec_eq
Decimal128.__ne__ = lambda s, o: (lambda r: r if r is NotImplemented else not r)(_dec_eq(s, o))
Decimal128.__hash__ = lambda s: hash(s.to_decimal()) if not s.to_decimal().is_nan() else 0


# int64 arithmetic stays int64 ($inc/$mul/$sum over NumberLong), as in mongod:
# bson's Int64 is a plain int subclass whose sums decay to int (then int32).
def _i64(name):
    base = getattr(int, name)

    def f(self, other):
        r = base(self, other)
        if type(r) is int and isinstance(other, int) and not isinstance(other, bool) \
                and -2**63 <= r < 2**63:
            return Int64(r)
        return r
    return f


for _n in ('__add__', '__radd__', '__sub__', '__rsub__', '__mul__', '__rmul__'):
    setattr(Int64, _n, _i64(_n))
Int64.__neg__ = lambda s: Int64(-int(s)) if int(s) != -2**63 else -int(s)

from mongomock import aggregate as _agg   # noqa: E402
_orig_cmp = _agg._Parser._handle_comparison_operator
_MISSING = object()


def _cmp_op(self, op, values):
    """$expr/$project comparisons where a field is missing: mongomock raises
    KeyError; MongoDB treats a missing value as lower than every other
    (null included) and equal only to another missing one."""
    if len(values) != 2:
        return _orig_cmp(self, op, values)
    try:
        a = self.parse(values[0])
    except KeyError:
        a = _MISSING
    try:
        b = self.parse(values[1])
    except KeyError:
        b = _MISSING
    if a is not _MISSING and b is not _MISSING:
        return _orig_cmp(self, op, values)
    c = (a is not _MISSING) - (b is not _MISSING)     # -1, 0, 1
    return {'$eq': c == 0, '$ne': c != 0, '$gt': c > 0, '$gte': c >= 0,
            '$lt': c < 0, '$lte': c <= 0, '$cmp': c}.get(op, False)


_agg._Parser._handle_comparison_operator = _cmp_op
filtering._type_op = _type_op
filtering._filterer_inst._operator_map['$type'] = _type_op
filtering._filterer_inst._operator_map['$mod'] = _mod_op

# ---------------------------------------------------------------------------


class CmdError(Exception):
    def __init__(self, code, name, msg):
        Exception.__init__(self, msg)
        self.code, self.name, self.msg = code, name, msg


CODE_NAMES = {2: 'BadValue', 9: 'FailedToParse', 11000: 'DuplicateKey',
              26: 'NamespaceNotFound', 43: 'CursorNotFound', 48: 'NamespaceExists',
              59: 'CommandNotFound', 20: 'IllegalOperation', 27: 'IndexNotFound',
              85: 'IndexOptionsConflict', 14: 'TypeMismatch',
              40573: 'Location40573'}


def err(code, msg):
    return CmdError(code, CODE_NAMES.get(code, 'Location%d' % code), msg)


def not_impl(what):
    """MongoDB's NotImplemented (238): a feature mongoserver.py lacks."""
    return CmdError(238, 'NotImplemented', 'not supported by mongoserver.py: %s' % what)


def bson_repr(v):
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, ObjectId):
        return "ObjectId('%s')" % v
    if isinstance(v, dict):
        return '{ ' + ', '.join('%s: %s' % (k, bson_repr(x)) for k, x in v.items()) + ' }'
    return repr(v)


def id_first(doc):
    """DOC with _id as its first field, where mongod keeps it."""
    if isinstance(doc, dict) and '_id' in doc and next(iter(doc)) != '_id':
        d = {'_id': doc['_id']}
        d.update(doc)
        return d
    return doc


def project(doc, fields):
    """DOC with the find projection FIELDS applied (None stays None)."""
    if doc is None or not fields:
        return doc
    tmp = mongomock.MongoClient()['p']['p']
    tmp.insert_one(doc)
    return tmp.find_one({}, projection=fields)


IGNORED_CREATE = {'create', '$db', 'lsid', '$clusterTime', 'writeConcern', '$readPreference',
                  'comment', 'apiVersion', 'apiStrict', 'apiDeprecationErrors'}


def refuse(name, body):
    """Options mongomock would silently ignore, refused so that a test never
    passes against a behaviour the real server does not have."""
    specs = [body] + [s for k in ('updates', 'deletes') for s in body.get(k) or []
                      if isinstance(s, dict)]
    for s in specs:
        # "simple" is byte order, which is what mongomock compares by.
        if s.get('collation') and s.get('collation') != {'locale': 'simple'}:
            raise not_impl('collation')
    for opt in ('max', 'min', 'tailable', 'awaitData', 'returnKey', 'showRecordId'):
        if body.get(opt):
            raise not_impl("find option '%s'" % opt)
    proj = body.get('projection') or body.get('fields') or {}
    if isinstance(proj, dict):
        for k, v in proj.items():
            if isinstance(v, dict) or k.endswith('.$'):
                raise not_impl('projection operator in %r' % k)
    if name == 'create':
        extra = set(body) - IGNORED_CREATE
        if extra:
            raise not_impl('create option(s) %s' % ', '.join(sorted(extra)))


class Server:
    def __init__(self):
        self.lock = threading.Lock()
        self.client = mongomock.MongoClient()
        self.cursors = {}           # id -> [ns, docs, pos]
        self.conn_ids = 0
        self.started = time.time()
        self.failpoint = None       # configureFailPoint "failCommand": [times, data]

    # -- the failCommand fail point (mongod's, with enableTestCommands) ----
    def c_configurefailpoint(self, db, arg, body):
        if arg != 'failCommand':
            raise not_impl('fail point %r' % arg)
        mode = body.get('mode')
        if mode == 'off':
            self.failpoint = None
        elif mode == 'alwaysOn':
            self.failpoint = [-1, dict(body.get('data') or {})]
        elif isinstance(mode, dict) and 'times' in mode:
            self.failpoint = [int(mode['times']), dict(body.get('data') or {})]
        else:
            raise err(2, 'mode must be off, alwaysOn or {times: n}')
        return {'ok': 1.0}

    def fail_for(self, name):
        """The failCommand data when command NAME is to fail now, else None
        (counting it against times)."""
        with self.lock:
            fp = self.failpoint
            if fp is None or name not in (fp[1].get('failCommands') or []):
                return None
            if fp[0] > 0:
                fp[0] -= 1
                if fp[0] == 0:
                    self.failpoint = None
            return fp[1]

    # -- helpers -----------------------------------------------------------
    def coll(self, db, name):
        if not isinstance(name, str) or not name:
            raise err(73, 'Invalid namespace specified')
        return self.client[db][name]

    def exists(self, db, name):
        return name in self.client[db].list_collection_names()

    def cursor_reply(self, ns, docs, batch_size, single=False, first=True):
        if batch_size is None:
            batch_size = 101 if first else len(docs)
        batch, size = [], 0
        pos = 0
        while pos < len(docs) and len(batch) < batch_size:
            n = len(bson.encode(docs[pos], codec_options=CODEC))
            if batch and size + n > MAX_BSON - 1024 * 1024:
                break
            batch.append(docs[pos])
            size += n
            pos += 1
        cid = 0
        if pos < len(docs) and not single:
            cid = random.randint(1, 2**62)
            self.cursors[cid] = [ns, docs, pos]
        batch = [id_first(d) for d in batch]
        key = 'firstBatch' if first else 'nextBatch'
        return {'cursor': {key: batch, 'id': Int64(cid), 'ns': ns}, 'ok': 1.0}

    def dup_message(self, c, doc, self_id=None):
        """The E11000 message naming the unique index DOC collides on
        (SELF_ID: the _id of the document an update changed, not a
        collision with itself)."""
        ns = '%s.%s' % (c.database.name, c.name)
        info = c.index_information()
        for name, spec in [('_id_', info.get('_id_', {'key': [('_id', 1)]}))] + \
                [(n, s) for n, s in info.items() if s.get('unique')]:
            keys = [k for k, _ in spec['key']]
            q, vals = {}, {}
            for k in keys:
                try:
                    v = helpers.get_value_by_dot(doc, k)
                except KeyError:
                    v = None
                q[k] = v
                vals[k] = v
            if name == '_id_' and ('_id' not in doc or
                                   (self_id is not None and doc['_id'] == self_id)):
                continue
            if self_id is not None and name != '_id_':
                q['_id'] = {'$ne': self_id}
            if c.find_one(q) is not None:
                return ('E11000 duplicate key error collection: %s index: %s dup key: %s'
                        % (ns, name, bson_repr(vals)))
        return 'E11000 duplicate key error collection: %s' % ns

    def write_error(self, c, index, e, doc=None, self_id=None):
        if isinstance(e, mongomock.DuplicateKeyError):
            return {'index': index, 'code': 11000,
                    'errmsg': self.dup_message(c, doc, self_id) if doc is not None
                    else 'E11000 duplicate key error'}
        if isinstance(e, NotImplementedError):
            e = not_impl(e)
        if isinstance(e, CmdError):
            return {'index': index, 'code': e.code, 'errmsg': e.msg}
        code = getattr(e, 'code', None) or 2
        return {'index': index, 'code': code, 'errmsg': str(e)}

    # -- dispatch ----------------------------------------------------------
    def run(self, body, seqs):
        for k, v in seqs.items():
            body[k] = v
        if not body:
            raise err(59, 'no such command: \'\'')
        name = next(iter(body))
        db = body.get('$db', 'admin')
        # A standalone mongod refuses a txnNumber (retryable writes and
        # transactions) with IllegalOperation; libmongoc sends one only to
        # replica sets and mongos, or with startTransaction.
        if 'txnNumber' in body or 'startTransaction' in body or 'autocommit' in body or \
                name in ('commitTransaction', 'abortTransaction'):
            raise err(20, 'Transaction numbers are only allowed on a replica set '
                          'member or mongos')
        refuse(name, body)
        fn = COMMANDS.get(name) or COMMANDS.get(name.lower())
        if fn is None:
            raise err(59, "no such command: '%s'" % name)
        with self.lock:
            return fn(self, db, body[name], body)

    def hello(self, db, arg, body, legacy=False, name='hello'):
        self.conn_ids += 1
        r = {}
        if name == 'hello':
            r['isWritablePrimary'] = True
        else:
            r['ismaster'] = True
        r.update({
            'helloOk': True,
            'maxBsonObjectSize': MAX_BSON, 'maxMessageSizeBytes': MAX_MSG,
            'maxWriteBatchSize': 100000,
            'localTime': datetime.datetime.utcnow().replace(microsecond=0),
            'logicalSessionTimeoutMinutes': 30, 'connectionId': self.conn_ids,
            'minWireVersion': 0, 'maxWireVersion': MAX_WIRE, 'readOnly': False,
            'ok': 1.0})
        return r

    def c_hello(self, db, arg, body):
        return self.hello(db, arg, body, name='hello')

    def c_ismaster(self, db, arg, body):
        return self.hello(db, arg, body, name='isMaster')

    def c_ok(self, db, arg, body):
        return {'ok': 1.0}

    def c_buildinfo(self, db, arg, body):
        return {'version': '5.0.0', 'gitVersion': 'mongoserver.py',
                'versionArray': [5, 0, 0, 0], 'bits': 64, 'debug': False,
                'maxBsonObjectSize': MAX_BSON, 'storageEngines': ['mongomock'],
                'ok': 1.0}

    def c_getparameter(self, db, arg, body):
        r = {'ok': 1.0}
        if 'featureCompatibilityVersion' in body or arg == '*':
            r['featureCompatibilityVersion'] = {'version': '5.0'}
        return r

    def c_getcmdlineopts(self, db, arg, body):
        return {'argv': ['mongod'], 'parsed': {}, 'ok': 1.0}

    def c_serverstatus(self, db, arg, body):
        return {'host': socket.gethostname(), 'version': '5.0.0',
                'process': 'mongod', 'uptime': time.time() - self.started,
                'ok': 1.0}

    def c_find(self, db, arg, body):
        c = self.coll(db, arg)
        flt = body.get('filter') or {}
        kw = {}
        sort = body.get('sort')
        if sort:
            kw['sort'] = list(sort.items())
        proj = body.get('projection')
        if proj:
            kw['projection'] = proj
        skip = int(body.get('skip', 0) or 0)
        limit = int(body.get('limit', 0) or 0)
        if skip < 0:
            raise err(51024, "BSON field 'skip' value must be >= 0, actual value '%d'" % skip)
        single = bool(body.get('singleBatch', False))
        if limit < 0:
            limit, single = -limit, True
        try:
            docs = list(c.find(flt, skip=skip, limit=limit, **kw))
        except NotImplementedError as e:
            raise not_impl(e)
        except mongomock.OperationFailure as e:
            raise err(getattr(e, 'code', None) or 2, str(e))
        bs = body.get('batchSize')
        if bs is not None and int(bs) < 0:
            raise err(51024, "BSON field 'batchSize' value must be >= 0")
        return self.cursor_reply('%s.%s' % (db, arg), docs,
                                 None if bs is None else int(bs), single)

    def c_getmore(self, db, arg, body):
        cid = int(arg)
        cur = self.cursors.get(cid)
        if cur is None:
            raise err(43, 'cursor id %d not found' % cid)
        ns, docs, pos = cur
        del self.cursors[cid]
        bs = body.get('batchSize')
        r = self.cursor_reply(ns, docs[pos:], None if not bs else int(bs), first=False)
        newid = int(r['cursor']['id'])
        if newid:          # keep the same id across getMores, as mongod does
            self.cursors[cid] = self.cursors.pop(newid)
            r['cursor']['id'] = Int64(cid)
        return r

    def c_killcursors(self, db, arg, body):
        killed, missing = [], []
        for cid in body.get('cursors', []):
            if self.cursors.pop(int(cid), None) is not None:
                killed.append(Int64(cid))
            else:
                missing.append(Int64(cid))
        return {'cursorsKilled': killed, 'cursorsNotFound': missing,
                'cursorsAlive': [], 'cursorsUnknown': [], 'ok': 1.0}

    def c_insert(self, db, arg, body):
        c = self.coll(db, arg)
        ordered = body.get('ordered', True)
        n, errors = 0, []
        for i, doc in enumerate(body.get('documents', [])):
            if '_id' not in doc:
                d2 = {'_id': ObjectId()}
                d2.update(doc)
                doc = d2
            doc = id_first(doc)
            try:
                c.insert_one(doc)
                n += 1
            except Exception as e:          # noqa: BLE001 (a write error)
                errors.append(self.write_error(c, i, e, doc))
                if ordered:
                    break
        r = {'n': n, 'ok': 1.0}
        if errors:
            r['writeErrors'] = errors
        return r

    def c_update(self, db, arg, body):
        c = self.coll(db, arg)
        ordered = body.get('ordered', True)
        n = nmod = 0
        upserted, errors = [], []
        for i, u in enumerate(body.get('updates', [])):
            q, upd = u.get('q', {}), u.get('u', {})
            multi, upsert = bool(u.get('multi')), bool(u.get('upsert'))
            try:
                if isinstance(upd, list):
                    raise not_impl('pipeline updates')
                is_op = bool(upd) and next(iter(upd)).startswith('$')
                if not is_op:
                    if multi:
                        raise err(9, 'multi update is not supported for replacement-style update')
                    res = c.replace_one(q, upd, upsert=upsert)
                elif multi:
                    res = c.update_many(q, upd, upsert=upsert,
                                        array_filters=u.get('arrayFilters'))
                else:
                    res = c.update_one(q, upd, upsert=upsert,
                                       array_filters=u.get('arrayFilters'))
                n += res.matched_count
                nmod += res.modified_count
                if res.upserted_id is not None:
                    n += 1
                    upserted.append({'index': i, '_id': res.upserted_id})
            except Exception as e:          # noqa: BLE001
                doc = self_id = None
                if isinstance(e, mongomock.DuplicateKeyError):
                    # the document as the update would have left it, to
                    # name the index in the message
                    replacement = not (upd and next(iter(upd)).startswith('$'))
                    target = c.find_one(q)
                    if target is not None:
                        self_id = target['_id']
                        doc = dict(upd, _id=self_id) if replacement else \
                            dict(target, **upd.get('$set', {}))
                    else:
                        doc = dict(upd) if replacement else dict(
                            {k: v for k, v in q.items() if not k.startswith('$')},
                            **upd.get('$set', {}), **upd.get('$setOnInsert', {}))
                errors.append(self.write_error(c, i, e, doc, self_id))
                if ordered:
                    break
        r = {'n': n, 'nModified': nmod, 'ok': 1.0}
        if upserted:
            r['upserted'] = upserted
        if errors:
            r['writeErrors'] = errors
        return r

    def c_delete(self, db, arg, body):
        c = self.coll(db, arg)
        ordered = body.get('ordered', True)
        n, errors = 0, []
        for i, d in enumerate(body.get('deletes', [])):
            try:
                lim = int(d.get('limit', 0))
                if lim not in (0, 1):
                    raise err(9, 'The limit field in delete objects must be 0 or 1. Got %d' % lim)
                res = (c.delete_one if lim == 1 else c.delete_many)(d.get('q', {}))
                n += res.deleted_count
            except Exception as e:          # noqa: BLE001
                errors.append(self.write_error(c, i, e))
                if ordered:
                    break
        r = {'n': n, 'ok': 1.0}
        if errors:
            r['writeErrors'] = errors
        return r

    def c_findandmodify(self, db, arg, body):
        c = self.coll(db, arg)
        q = body.get('query') or {}
        sort = list((body.get('sort') or {}).items()) or None
        fields = body.get('fields') or None
        new = bool(body.get('new'))
        upsert = bool(body.get('upsert'))
        before = c.find_one(q, sort=sort)
        leo = {'n': 0}
        try:
            if body.get('remove'):
                if 'update' in body:
                    raise err(9, 'Cannot specify both an update and remove=true')
                if new:
                    raise err(9, 'Cannot specify both new=true and remove=true; '
                                 "'remove' always returns the deleted document")
                if before is not None:
                    c.delete_one({'_id': before['_id']})
                    leo['n'] = 1
                value = project(before, fields)
            else:
                upd = body.get('update')
                if upd is None:
                    raise err(9, 'Either an update or remove=true must be specified')
                if isinstance(upd, list):
                    raise not_impl('pipeline updates')
                if before is None and not upsert:
                    value = None
                    leo['updatedExisting'] = False
                else:
                    after = c._find_and_modify(q, update=upd, upsert=upsert,
                                               sort=sort, new=True)
                    leo['n'] = 1
                    leo['updatedExisting'] = before is not None
                    if before is None and after is not None:
                        leo['upserted'] = after['_id']
                    value = project(after if new else before, fields)
        except CmdError:
            raise
        except mongomock.DuplicateKeyError:
            raise err(11000, 'E11000 duplicate key error collection: %s.%s' % (db, arg))
        except (mongomock.OperationFailure, ValueError) as e:
            raise err(getattr(e, 'code', None) or 2, str(e))
        return {'lastErrorObject': leo, 'value': id_first(value), 'ok': 1.0}

    def c_aggregate(self, db, arg, body):
        pipeline = body.get('pipeline', [])
        if pipeline and isinstance(pipeline[0], dict) and '$changeStream' in pipeline[0]:
            raise err(40573, 'The $changeStream stage is only supported on replica sets')
        if not isinstance(arg, str):
            raise not_impl('collection-less aggregate')
        if 'cursor' not in body and not body.get('explain'):
            raise err(9, "The 'cursor' option is required, except for aggregate with the explain argument")
        if body.get('explain'):
            raise not_impl('explain')
        c = self.coll(db, arg)
        try:
            docs = list(c.aggregate(pipeline))
        except NotImplementedError as e:
            raise not_impl(e)
        except mongomock.OperationFailure as e:
            raise err(getattr(e, 'code', None) or 2, str(e))
        bs = (body.get('cursor') or {}).get('batchSize')
        return self.cursor_reply('%s.%s' % (db, arg), docs, None if bs is None else int(bs))

    def c_count(self, db, arg, body):
        c = self.coll(db, arg)
        kw = {}
        if body.get('skip'):
            kw['skip'] = int(body['skip'])
        if body.get('limit'):
            kw['limit'] = abs(int(body['limit']))
        try:
            n = c.count_documents(body.get('query') or {}, **kw)
        except mongomock.OperationFailure as e:
            raise err(getattr(e, 'code', None) or 2, str(e))
        return {'n': n, 'ok': 1.0}

    def c_distinct(self, db, arg, body):
        c = self.coll(db, arg)
        try:
            vals = c.distinct(body['key'], body.get('query') or {})
        except mongomock.OperationFailure as e:
            raise err(getattr(e, 'code', None) or 2, str(e))
        return {'values': vals, 'ok': 1.0}

    def c_create(self, db, arg, body):
        if self.exists(db, arg):
            raise err(48, 'Collection already exists. NS: %s.%s' % (db, arg))
        self.client[db].create_collection(arg)
        return {'ok': 1.0}

    def c_drop(self, db, arg, body):
        if not self.exists(db, arg):
            raise err(26, 'ns not found')
        n = len(self.coll(db, arg).index_information())
        self.client[db].drop_collection(arg)
        self.kill_ns('%s.%s' % (db, arg))
        return {'nIndexesWas': n, 'ns': '%s.%s' % (db, arg), 'ok': 1.0}

    def kill_ns(self, ns):
        for cid in [k for k, v in self.cursors.items()
                    if v[0] == ns or v[0].startswith(ns + '.')]:
            del self.cursors[cid]

    def c_dropdatabase(self, db, arg, body):
        self.client.drop_database(db)
        self.kill_ns(db)
        return {'dropped': db, 'ok': 1.0}

    def c_listcollections(self, db, arg, body):
        docs = []
        for name in sorted(self.client[db].list_collection_names()):
            docs.append({'name': name, 'type': 'collection', 'options': {},
                         'info': {'readOnly': False},
                         'idIndex': {'v': 2, 'key': {'_id': 1}, 'name': '_id_'}})
        flt = body.get('filter') or {}
        docs = [d for d in docs if filtering.filter_applies(flt, d)]
        if body.get('nameOnly'):
            docs = [{'name': d['name'], 'type': d['type']} for d in docs]
        bs = (body.get('cursor') or {}).get('batchSize')
        return self.cursor_reply('%s.$cmd.listCollections' % db, docs,
                                 None if bs is None else int(bs))

    def c_listdatabases(self, db, arg, body):
        dbs = [{'name': n, 'sizeOnDisk': 8192, 'empty': False}
               for n in sorted(self.client.list_database_names())]
        flt = body.get('filter') or {}
        dbs = [d for d in dbs if filtering.filter_applies(flt, d)]
        if body.get('nameOnly'):
            dbs = [{'name': d['name']} for d in dbs]
        return {'databases': dbs, 'totalSize': 8192 * len(dbs), 'ok': 1.0}

    def c_createindexes(self, db, arg, body):
        c = self.coll(db, arg)
        created = not self.exists(db, arg)
        if created:
            self.client[db].create_collection(arg)
        before = len(c.index_information())
        for spec in body.get('indexes', []):
            key = spec.get('key')
            if not key or not spec.get('name'):
                raise err(9, "Error in specification %s: the index 'key' and 'name' are required"
                          % bson_repr(spec))
            kw = {'name': spec['name']}
            for opt in ('unique', 'sparse', 'expireAfterSeconds', 'partialFilterExpression'):
                if opt in spec:
                    kw[opt] = spec[opt]
            try:
                c.create_index(list(key.items()), **kw)
            except mongomock.DuplicateKeyError:
                raise err(11000, 'Index build failed: E11000 duplicate key error '
                                 'collection: %s.%s index: %s' % (db, arg, spec['name']))
            except mongomock.OperationFailure as e:
                raise err(85, str(e))
        return {'createdCollectionAutomatically': created,
                'numIndexesBefore': before,
                'numIndexesAfter': len(c.index_information()), 'ok': 1.0}

    def c_listindexes(self, db, arg, body):
        if not self.exists(db, arg):
            raise err(26, 'ns does not exist: %s.%s' % (db, arg))
        docs = []
        for name, spec in self.coll(db, arg).index_information().items():
            d = {'v': 2, 'key': SON(spec['key']), 'name': name}
            for k, v in spec.items():
                if k not in ('key', 'v'):
                    d[k] = v
            docs.append(d)
        bs = (body.get('cursor') or {}).get('batchSize')
        return self.cursor_reply('%s.$cmd.listIndexes.%s' % (db, arg), docs,
                                 None if bs is None else int(bs))

    def c_dropindexes(self, db, arg, body):
        if not self.exists(db, arg):
            raise err(26, 'ns not found %s.%s' % (db, arg))
        c = self.coll(db, arg)
        n = len(c.index_information())
        idx = body.get('index')
        if idx == '*':
            c.drop_indexes()
        else:
            names = idx if isinstance(idx, list) else [idx]
            info = c.index_information()
            for nm in names:
                if isinstance(nm, dict):
                    nm = next((k for k, s in info.items() if s['key'] == list(nm.items())), None)
                if nm == '_id_':
                    raise err(72, 'cannot drop _id index')
                if nm not in info:
                    raise err(27, 'index not found with name [%s]' % nm)
                c.drop_index(nm)
        return {'nIndexesWas': n, 'ok': 1.0}


COMMANDS = {
    'hello': Server.c_hello, 'ismaster': Server.c_ismaster,
    'ping': Server.c_ok, 'endsessions': Server.c_ok, 'buildinfo': Server.c_buildinfo,
    'getparameter': Server.c_getparameter, 'getcmdlineopts': Server.c_getcmdlineopts,
    'serverstatus': Server.c_serverstatus, 'getlasterror': Server.c_ok,
    'find': Server.c_find, 'getMore': Server.c_getmore, 'killCursors': Server.c_killcursors,
    'insert': Server.c_insert, 'update': Server.c_update, 'delete': Server.c_delete,
    'findAndModify': Server.c_findandmodify, 'findandmodify': Server.c_findandmodify,
    'aggregate': Server.c_aggregate, 'count': Server.c_count, 'distinct': Server.c_distinct,
    'create': Server.c_create, 'drop': Server.c_drop, 'dropDatabase': Server.c_dropdatabase,
    'listCollections': Server.c_listcollections, 'listDatabases': Server.c_listdatabases,
    'createIndexes': Server.c_createindexes, 'listIndexes': Server.c_listindexes,
    'dropIndexes': Server.c_dropindexes, 'deleteIndexes': Server.c_dropindexes,
    'configureFailPoint': Server.c_configurefailpoint,
}

# ---------------------------------------------------------------------------
# Wire protocol


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def cstring(data, pos):
    end = data.index(b'\0', pos)
    return data[pos:end].decode('utf-8'), end + 1


def decode_all(data):
    return bson.decode_all(data, CODEC)


def encode(doc):
    return bson.encode(doc, codec_options=CODEC)


def parse_msg(payload):
    flags, = struct.unpack_from('<I', payload, 0)
    end = len(payload) - (4 if flags & 1 else 0)        # checksumPresent
    pos, body, seqs = 4, None, {}
    while pos < end:
        kind = payload[pos]
        pos += 1
        if kind == 0:
            n, = struct.unpack_from('<i', payload, pos)
            body = bson.decode(payload[pos:pos + n], codec_options=CODEC)
            pos += n
        elif kind == 1:
            n, = struct.unpack_from('<i', payload, pos)
            ident, p2 = cstring(payload, pos + 4)
            seqs.setdefault(ident, []).extend(decode_all(payload[p2:pos + n]))
            pos += n
        else:
            raise ValueError('unknown OP_MSG section kind %d' % kind)
    return flags, body, seqs


def error_doc(e):
    if isinstance(e, CmdError):
        return {'ok': 0.0, 'errmsg': e.msg, 'code': e.code, 'codeName': e.name}
    if isinstance(e, NotImplementedError):
        return error_doc(not_impl(e))
    if isinstance(e, mongomock.OperationFailure):
        return error_doc(err(getattr(e, 'code', None) or 2, str(e)))
    return {'ok': 0.0, 'errmsg': '%s: %s' % (type(e).__name__, e), 'code': 1,
            'codeName': 'InternalError'}


def run_command(server, body, seqs):
    try:
        return server.run(body, seqs)
    except Exception as e:          # noqa: BLE001 (every failure is a reply)
        if not isinstance(e, CmdError):
            sys.stderr.write('mongoserver: %r on %s\n' % (e, next(iter(body), '?')))
        return error_doc(e)


def serve_conn(server, sock):
    reqid = 0
    try:
        while True:
            hdr = recv_exact(sock, 16)
            length, req, _resp, op = struct.unpack('<iiii', hdr)
            if length < 16 or length > MAX_MSG:
                return
            payload = recv_exact(sock, length - 16)
            reqid += 1
            if op == OP_MSG:
                try:
                    flags, body, seqs = parse_msg(payload)
                    fail = server.fail_for(next(iter(body or {}), ''))
                    if fail and fail.get('blockConnection'):
                        time.sleep(int(fail.get('blockTimeMS', 0)) / 1000.0)
                    if fail and fail.get('closeConnection'):
                        return
                    if fail and 'errorCode' in fail:
                        reply = error_doc(err(int(fail['errorCode']),
                                              "Failing command via 'failCommand' failpoint"))
                    else:
                        reply = run_command(server, body or {}, seqs)
                except Exception as e:      # noqa: BLE001 (a malformed message)
                    flags = 0
                    reply = error_doc(err(9, 'malformed OP_MSG: %s' % e))
                if flags & 2:           # moreToCome: no reply (w:0)
                    continue
                out = struct.pack('<I', 0) + b'\0' + encode(reply)
                sock.sendall(struct.pack('<iiii', 16 + len(out), reqid, req, OP_MSG) + out)
            elif op == OP_QUERY:
                _flags, = struct.unpack_from('<i', payload, 0)
                coll, pos = cstring(payload, 4)
                pos += 8                # numberToSkip, numberToReturn
                n, = struct.unpack_from('<i', payload, pos)
                q = bson.decode(payload[pos:pos + n], codec_options=CODEC)
                if '$query' in q:
                    q = q['$query']
                if coll.endswith('.$cmd'):
                    q.setdefault('$db', coll[:-5])
                    reply = run_command(server, q, {})
                else:
                    reply = error_doc(err(2, 'OP_QUERY find is not supported; use OP_MSG'))
                doc = encode(reply)
                out = struct.pack('<iqii', 0, 0, 0, 1) + doc
                sock.sendall(struct.pack('<iiii', 16 + len(out), reqid, req, OP_REPLY) + out)
            else:
                sys.stderr.write('mongoserver: unsupported opcode %d\n' % op)
                return
    except (EOFError, ConnectionError, OSError):
        pass
    finally:
        sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--max-seconds', type=float, default=3600.0)
    a = ap.parse_args()

    def bye(*_):
        os._exit(0)
    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)
    t = threading.Timer(a.max_seconds, lambda: (sys.stderr.write(
        'mongoserver: --max-seconds reached, exiting\n'), os._exit(0)))
    t.daemon = True
    t.start()

    server = Server()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(64)
    sys.stderr.write('mongoserver: listening on %s:%d (pid %d)\n' % (a.host, a.port, os.getpid()))
    sys.stderr.flush()
    while True:
        conn, _ = ls.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_conn, args=(server, conn), daemon=True).start()


if __name__ == '__main__':
    main()
