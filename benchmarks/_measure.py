"""Run a command and print its wall time and peak RSS as JSON.

A small launcher process starts the command so that the peak RSS reported is the
command's own: on Linux a child's maximum RSS starts from its parent's at fork time, so
a large parent (one that generated the data, or a test runner) would inflate it.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

start = time.perf_counter()
# Standard error goes to a file, not a pipe: a chatty command (the reference pipeline logs
# every step) would otherwise block on a full pipe before exiting.
with tempfile.TemporaryFile() as log:
    proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=log)
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    log.seek(0)
    err = log.read().decode(errors="replace")
print(json.dumps({"wall": time.perf_counter() - start, "maxrss_kib": usage.ru_maxrss,
                  "code": code, "stderr": err[-2000:]}))
