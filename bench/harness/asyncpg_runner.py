"""asyncpg contender for bench/peers.ts, driven over stdin/stdout.

One JSON command per input line, one JSON answer per output line:
  {"op": "open", "id": "S1", "dsn": "...", "size": 10}          -> {"ok": true}
  {"op": "run", "id": "S1", "kind": "checkout", "tasks": 100, "seconds": 3.0,
   "statements": ["SELECT $1::int"]}                              -> a sample
  {"op": "close", "id": "S1"}                                    -> {"ok": true}
kind: "checkout" (acquire, one statement, release), "one_shot" (pool.fetchval),
"transaction" (BEGIN, UPDATE, INSERT, COMMIT on one checkout) or "waiters"
(checkout as above, also recording the acquire wait of every operation).
A sample is {"ops", "seconds", "p50", "p99"} (ms) plus "extra" for waiters.
"""

import asyncio
import json
import math
import random
import sys
import time

import asyncpg

pools = {}


def quantile(xs, q):
    if not xs:
        return None
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


async def run(cmd):
    pool = pools[cmd["id"]]
    kind = cmd["kind"]
    statements = cmd["statements"]
    tasks = cmd["tasks"]
    end = time.perf_counter() + cmd["seconds"]
    lat = []
    waits = []
    per_task = [0] * tasks
    counter = 0

    async def one(t):
        nonlocal counter
        stmt = statements[0]
        while time.perf_counter() < end:
            counter += 1
            i = counter
            start = time.perf_counter()
            if kind == "one_shot":
                await pool.fetchval(stmt, i)
            elif kind == "transaction":
                aid = random.randint(1, 1000)
                delta = random.randint(-5000, 5000)
                async with pool.acquire() as con:
                    await con.execute(statements[0])
                    await con.execute(statements[1], delta, aid)
                    await con.execute(statements[2], aid, delta)
                    await con.execute(statements[3])
            else:
                async with pool.acquire() as con:
                    if kind == "waiters":
                        waits.append((time.perf_counter() - start) * 1000)
                    await con.fetchval(stmt, i)
            lat.append((time.perf_counter() - start) * 1000)
            per_task[t] += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one(t) for t in range(tasks)))
    seconds = time.perf_counter() - t0
    lat.sort()
    out = {"ops": len(lat), "seconds": seconds, "p50": quantile(lat, 0.5), "p99": quantile(lat, 0.99)}
    if kind == "waiters":
        waits.sort()
        mean = sum(waits) / len(waits) if waits else None
        out["extra"] = {
            "waitP50": quantile(waits, 0.5),
            "waitP99": quantile(waits, 0.99),
            "waitMax": waits[-1] if waits else None,
            "waitMean": mean,
            "maxOverMean": (waits[-1] / mean) if waits and mean else None,
            "starved": sum(1 for n in per_task if n == 0),
            "minOpsPerWaiter": min(per_task),
        }
    return out


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        try:
            if cmd["op"] == "open":
                size = cmd["size"]
                pools[cmd["id"]] = await asyncpg.create_pool(cmd["dsn"], min_size=size, max_size=size)
                answer = {"ok": True}
            elif cmd["op"] == "run":
                answer = await run(cmd)
            elif cmd["op"] == "close":
                await pools.pop(cmd["id"]).close()
                answer = {"ok": True}
            else:
                answer = {"error": "unknown op"}
        except Exception as e:  # reported to the harness, which marks the contender failed
            answer = {"error": repr(e)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


asyncio.run(main())
