"""python3-hl7's asyncio MLLP server, the peer of the HL7 figure: it answers every message with an
AA ACK and stores nothing. Prints its port on stdout once listening.
Usage: python3 bench/peers/mllp-server.py"""
import asyncio

import hl7
from hl7.mllp import start_hl7_server


async def handle(reader, writer):
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            writer.writemessage(message.create_ack())
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


async def main():
    async with await start_hl7_server(handle, host="127.0.0.1", port=0) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()


asyncio.run(main())
