#!/usr/bin/env python3
"""Writes a dataset as RESP commands (for redis-cli --pipe) to FILE.

Usage: dataset.py FILE SCALE KIND=COUNT...
Each KIND=COUNT adds COUNT * SCALE keys of that kind, in the order given:
  str   SET str:%07d  -> 32 bytes          key   SET key:%07d -> %032d
  ttl   SET ttl:%07d  -> 32 bytes EX 100000
  hash  hash:%06d, 10 fields               list  list:%06d, 10 items (RPUSH)
  set   set:%06d, 10 members               zset  zset:%06d, 10 members
"""
import sys


def cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def hash_cmd(i):
    args = ["HSET", "hash:%06d" % i]
    for j in range(10):
        args += ["field:%d" % j, "value-%010d" % (i * 10 + j)]
    return cmd(*args)


def zset_cmd(i):
    args = ["ZADD", "zset:%06d" % i]
    for j in range(10):
        args += [i + j * 0.5, "member-%06d" % j]
    return cmd(*args)


KINDS = {
    "str": lambda i: cmd("SET", "str:%07d" % i, b"v" * 32),
    "key": lambda i: cmd("SET", "key:%07d" % i, b"%032d" % i),
    "ttl": lambda i: cmd("SET", "ttl:%07d" % i, b"v" * 32, "EX", 100000),
    "hash": hash_cmd,
    "list": lambda i: cmd("RPUSH", "list:%06d" % i, *["item-%08d" % (i + j) for j in range(10)]),
    "set": lambda i: cmd("SADD", "set:%06d" % i, *["member-%06d" % (i + j) for j in range(10)]),
    "zset": zset_cmd,
}


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    path, scale = sys.argv[1], float(sys.argv[2])
    with open(path, "wb") as f:
        for spec in sys.argv[3:]:
            kind, count = spec.split("=")
            make = KINDS[kind]
            for i in range(int(int(count) * scale)):
                f.write(make(i))


main()
