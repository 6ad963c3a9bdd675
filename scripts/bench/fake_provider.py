"""A small asyncio HTTP/1.1 keep-alive provider for benchmarks nginx cannot
play: --delay-ms answers after a fixed delay (the slow-provider memory run),
--mews-echo answers Mews messages/add with one added message per Identifier
(the batching run). Loopback only.

    python3 fake_provider.py --port P [--delay-ms 200] [--mews-echo]
"""
import argparse
import asyncio
import json
import signal
import uuid

FIXED = (b'{"Messages":[{"Identifier":"bench","Message":{"Id":"3fa85f64-5717-4562-b3fc-2c963f66afa6",'
         b'"MessageThreadId":"8d02142f-31cf-4115-90bf-ae5200c7a1ba","Text":"Text of the message",'
         b'"Sender":"Application","CreatedUtc":"2024-04-11T08:54:47.193Z"}}]}')
requests = 0


def mews_answer(body):
    data = json.loads(body)
    out = [{"Identifier": m.get("Identifier"),
            "Message": {"Id": str(uuid.uuid4()), "MessageThreadId": m["MessageThreadId"], "Text": m["Text"],
                        "Sender": "Application", "CreatedUtc": "2026-11-22T10:00:00.000Z"}}
           for m in data["Messages"]]
    return json.dumps({"Messages": out}).encode()


async def serve(reader, writer, args):
    global requests
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length) if length else b""
            requests += 1
            if args.delay_ms:
                await asyncio.sleep(args.delay_ms / 1000)
            answer = mews_answer(body) if args.mews_echo else FIXED
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(answer), answer))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--mews-echo", action="store_true")
    parser.add_argument("--count-file")
    args = parser.parse_args()
    server = await asyncio.start_server(lambda r, w: serve(r, w, args), "127.0.0.1", args.port, backlog=4096,
                                        limit=8 * 1024 * 1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    if args.count_file:
        with open(args.count_file, "w") as f:
            f.write(str(requests))


asyncio.run(main())
