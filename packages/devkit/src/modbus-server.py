"""A Modbus server for tests, on Debian's python3-pymodbus 3.0 library API (its CLI is broken).

Usage: /usr/bin/python3 modbus-server.py '<spec JSON>'

spec: {"transport": "tcp", "port": 0} or {"transport": "rtu", "path": "/dev/pts/N", "baudRate": 9600,
"parity": "none", "stopBits": 1}, plus "units": {"1": [value, ...]} where a value is
{"table": "hr"|"ir"|"co"|"di", "address": 0-based, "type": ..., "order": "ABCD"|"CDAB"|"BADC"|"DCBA",
"value": ...} (types as in the Attaché config; "words" takes a list of raw registers). Only the
addresses given exist: reading any other gives exception 2 (illegal data address). An RTU server
ignores unit ids it does not have, as a missing device on a line would.

TCP only: "delayMs" (default 0) makes each answer wait that long while the server goes on receiving,
so a client that sends before the previous answer shows as overlapping requests in the log.

Prints "ready <port>" (TCP) or "ready" (RTU) on stdout once serving. Each stdin line
{"unit": 1, "value": {...}} sets a value and is answered "set"; {"unit": 1, "silent": true|false}
makes the unit stop answering (TCP) or answer again, answered "set"; {"requests": true} is answered
with one JSON line: every TCP request so far, [{"unit", "peer" (client port), "arrived",
"answered" (time.monotonic() seconds; null while unanswered)}].
"""
import asyncio
import json
import struct
import sys
import threading
import time

from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext, ModbusSparseDataBlock
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer
from pymodbus.server.async_io import ModbusConnectedRequestHandler
from pymodbus.transaction import ModbusRtuFramer

FORMATS = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f",
           "int64": ">q", "uint64": ">Q", "float64": ">d"}
STORES = {"hr": "h", "ir": "i", "co": "c", "di": "d"}


def big_endian_bytes(value):
    """The value's bytes, most significant first (A B C D ...)."""
    kind = value["type"]
    if kind == "string":
        text = value["value"].encode("latin1")
        return text.ljust(2 * value["length"], b"\0")
    if kind in ("int64", "uint64"):
        return struct.pack(FORMATS[kind], int(value["value"]))
    if kind == "bit":
        return struct.pack(">H", int(value["value"]))
    return struct.pack(FORMATS[kind], value["value"])


def to_words(value):
    """The registers as a device with this byte order would hold them."""
    if "words" in value:
        return list(value["words"])
    data = big_endian_bytes(value)
    order = value.get("order", "ABCD")
    words = [data[i:i + 2] for i in range(0, len(data), 2)]
    if order in ("CDAB", "DCBA") and value["type"] != "string":
        words.reverse()
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


def put(context, value):
    store = STORES[value["table"]]
    if store in ("c", "d"):
        context.setValues(1 if store == "c" else 2, value["address"], [bool(value["value"])])
        return
    fx = 3 if store == "h" else 4
    context.setValues(fx, value["address"], to_words(value))


def slave(values):
    blocks = {store: {} for store in STORES.values()}
    for value in values:
        store = STORES[value["table"]]
        words = [bool(value["value"])] if store in ("c", "d") else to_words(value)
        for i, word in enumerate(words):
            blocks[store][value["address"] + i] = word
    sparse = {k: ModbusSparseDataBlock(v or {65535: 0}) for k, v in blocks.items()}
    return ModbusSlaveContext(di=sparse["d"], co=sparse["c"], hr=sparse["h"], ir=sparse["i"], zero_mode=True)


class TcpHandler(ModbusConnectedRequestHandler):
    """Logs each request, answers it after DELAY seconds, or never for a unit in SILENT."""
    DELAY = 0.0
    SILENT = set()
    REQUESTS = []

    def execute(self, request, *addr):
        entry = {"unit": request.unit_id, "peer": self.client_address[1], "arrived": time.monotonic(),
                 "answered": None}
        TcpHandler.REQUESTS.append(entry)
        if request.unit_id in TcpHandler.SILENT:
            return

        def answer():
            super(TcpHandler, self).execute(request, *addr)
            entry["answered"] = time.monotonic()
        asyncio.get_running_loop().call_later(TcpHandler.DELAY, answer)


def watch_stdin(loop, slaves):
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        loop.call_soon_threadsafe(apply, slaves, command)


def apply(slaves, command):
    if "requests" in command:
        print(json.dumps(TcpHandler.REQUESTS), flush=True)
        return
    if "silent" in command:
        (TcpHandler.SILENT.add if command["silent"] else TcpHandler.SILENT.discard)(int(command["unit"]))
    else:
        put(slaves[int(command["unit"])], command["value"])
    print("set", flush=True)


async def serve_tcp(context, port):
    """Listens on 127.0.0.1:port, with SO_REUSEADDR so that a restart on the same port is not refused for the
    previous server's connections in TIME_WAIT; retries for 10 s while the port is still held otherwise."""
    for _ in range(50):
        server = await StartAsyncTcpServer(
            context, address=("127.0.0.1", port), allow_reuse_address=True, defer_start=True, handler=TcpHandler)
        task = asyncio.create_task(server.serve_forever())
        await asyncio.wait([task, server.serving], return_when=asyncio.FIRST_COMPLETED)
        if server.serving.done():
            print("ready", server.server.sockets[0].getsockname()[1], flush=True)
            return task
        print(f"cannot listen yet: {task.exception()}", file=sys.stderr, flush=True)
        await asyncio.sleep(0.2)
    raise OSError(f"port {port} stayed in use")


async def main(spec):
    slaves = {int(unit): slave(values) for unit, values in spec["units"].items()}
    context = ModbusServerContext(slaves=slaves, single=False)
    if spec["transport"] == "tcp":
        TcpHandler.DELAY = spec.get("delayMs", 0) / 1000
        task = await serve_tcp(context, spec.get("port", 0))
    else:
        server = await StartAsyncSerialServer(
            context, framer=ModbusRtuFramer, port=spec["path"], baudrate=spec.get("baudRate", 9600),
            parity={"none": "N", "even": "E", "odd": "O"}[spec.get("parity", "none")],
            stopbits=spec.get("stopBits", 1), bytesize=8, ignore_missing_slaves=True, defer_start=True)
        await server.start()
        task = asyncio.create_task(server.serve_forever())
        print("ready", flush=True)
    threading.Thread(target=watch_stdin, args=(asyncio.get_running_loop(), slaves), daemon=True).start()
    await task


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
