import sys, time, tempfile, threading
from pathlib import Path
from actors.grades.testing import Cluster
from bench.chaos.answers import Answers
from bench.chaos.workloads.grades import GradesWorkload
d = Path(tempfile.mkdtemp(prefix="sfprobe-"))
c = Cluster(d, workers=None)
bus, one, two, _ = c.launch_fresh()
one.wait_ready(); two.wait_ready()
ans = Answers()
w = GradesWorkload(ans, [one, two], 1); w.start()
time.sleep(2)
st = two.child("storage"); t0 = time.monotonic(); st.kill()
time.sleep(7)
w.stop()
for a in ans.items:
    if a.target.startswith("replica2") and a.done > t0 - 0.2 and a.sent < t0 + 6 and (a.status not in (200, 404) or a.done - a.sent > 0.3 or abs(a.sent-t0) < 0.1):
        print(f"{a.target:15} {a.what} sent {a.sent-t0:+.3f} done {a.done-t0:+.3f} {a.status}")
c.stop_all()
print(d)
