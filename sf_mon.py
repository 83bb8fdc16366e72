import asyncio, subprocess, sys, time, logging
logging.basicConfig(level=logging.INFO)
from actors.runtime.client import AsyncClient
from actors.grades.messages import Get
ep = "ipc:///tmp/sfmon/s.sock"
async def main():
    p = subprocess.Popen([sys.executable, "/tmp/sfmon/silent.py", ep], stdout=subprocess.PIPE); p.stdout.readline()
    c = AsyncClient(ep, 5.0)
    t = asyncio.ensure_future(c.call(Get("x"), resend=False))
    await asyncio.sleep(0.3)
    t0 = time.monotonic(); p.kill(); p.wait()
    try: await t
    except Exception as e: print(repr(e), time.monotonic() - t0)
asyncio.run(main())
