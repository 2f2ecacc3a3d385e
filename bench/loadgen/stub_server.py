#!/usr/bin/env python3
"""A stub HTTP/1.1 server for checking persona_loadgen without `persona serve`.

    python3 bench/loadgen/stub_server.py --port 18080 [--delay-ms 1] [--chunked] [--close-every 50]

Keep-alive; GET answers {"user_id": ...}; POST answers {"accepted": N} with N = the number of
top-level objects in a JSON array body; --chunked sends bodies with chunked transfer coding,
--close-every N closes the connection after every N-th response ("Connection: close"),
--error-every N answers every N-th request with 503. Prints "listening on http://..." when ready.
"""
import argparse
import asyncio
import json


async def handle(reader, writer, args, counter):
    served = 0
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            if args.delay_ms:
                await asyncio.sleep(args.delay_ms / 1000)
            counter[0] += 1
            served += 1
            status = "200 OK"
            if args.error_every and counter[0] % args.error_every == 0:
                status = "503 Service Unavailable"
                payload = {"error": "unavailable", "detail": "stub"}
            elif method == "POST":
                try:
                    parsed = json.loads(body)
                    n = len(parsed) if isinstance(parsed, list) else 1
                except ValueError:
                    n = 0
                payload = {"accepted": n, "duplicates": 0, "rejected": []}
            else:
                payload = {"user_id": target.split("/")[3] if target.count("/") >= 3 else "",
                           "stats": {"events": 1}}
            data = json.dumps(payload).encode()
            close = args.close_every and served % args.close_every == 0
            headers = [f"HTTP/1.1 {status}", "Content-Type: application/json"]
            if close:
                headers.append("Connection: close")
            if args.chunked:
                headers.append("Transfer-Encoding: chunked")
                half = len(data) // 2
                chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in (data[:half], data[half:]) if c)
                out = ("\r\n".join(headers) + "\r\n\r\n").encode() + chunks + b"0\r\n\r\n"
            else:
                headers.append(f"Content-Length: {len(data)}")
                out = ("\r\n".join(headers) + "\r\n\r\n").encode() + data
            writer.write(out)
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=18080)
    p.add_argument("--delay-ms", type=float, default=0)
    p.add_argument("--chunked", action="store_true")
    p.add_argument("--close-every", type=int, default=0)
    p.add_argument("--error-every", type=int, default=0)
    args = p.parse_args()
    counter = [0]
    server = await asyncio.start_server(lambda r, w: handle(r, w, args, counter), "127.0.0.1",
                                        args.port, limit=64 << 20)
    print(f"listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
