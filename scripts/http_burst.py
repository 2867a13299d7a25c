#!/usr/bin/env python3
"""Bursts of concurrent HTTP requests against a running sluice, printing its RSS.

usage: http_burst.py PID HTTP_PORT [BURSTS] [CONCURRENCY] [MODE]

MODE is mixed (default), stats or pub.

Each burst opens CONCURRENCY connections at once; half send GET /stats, half POST /pub
with a 1 KiB body, each on its own connection, all waiting together before reading. RSS
(VmRSS from /proc/PID/status) is printed before, after each burst, and 5 s after the last.
Refused or reset connections are counted, not retried. Bounded: BURSTS x CONCURRENCY
requests, each with a 30 s timeout.
"""
import asyncio
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


MODE = "mixed"


async def one(port, i, start):
    body = b"x" * 1024
    if MODE == "stats" or (MODE == "mixed" and i % 2):
        req = b"GET /stats?format=json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    else:
        req = (b"POST /pub?topic=burst HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
        await start.wait()
        writer.write(req)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        return data.startswith(b"HTTP/1.1 200")
    except Exception:
        return False


async def burst(port, concurrency):
    start = asyncio.Event()
    tasks = [asyncio.create_task(one(port, i, start)) for i in range(concurrency)]
    await asyncio.sleep(0.5)
    start.set()
    results = await asyncio.gather(*tasks)
    return sum(results)


def main():
    pid, port = int(sys.argv[1]), int(sys.argv[2])
    bursts = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    concurrency = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    global MODE
    MODE = sys.argv[5] if len(sys.argv) > 5 else "mixed"
    print(f"rss before: {rss_kib(pid)} KiB")
    for b in range(bursts):
        ok = asyncio.run(burst(port, concurrency))
        print(f"burst {b + 1}: {ok}/{concurrency} ok, rss {rss_kib(pid)} KiB")
    time.sleep(5)
    print(f"rss 5 s after: {rss_kib(pid)} KiB")


if __name__ == "__main__":
    main()
