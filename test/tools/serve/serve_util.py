"""Helpers of the mmrun serve end-to-end tests: start `mmrun serve` on 127.0.0.1 with a free port,
wait until it listens, read /metrics, stop it with SIGTERM and check its exit code; and a small
runner that runs every test_* function, prints one line per test and exits 1 if any failed."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request


class Server:
    """One `mmrun serve` process. Its stderr is collected in `log` (a list of lines)."""

    def __init__(self, mmrun, plan, model_dir, *flags, start_timeout=60):
        self.cmd = [mmrun, "serve", plan, "--weights", model_dir, "--device", "host", "--host", "127.0.0.1",
                    "--port", "0", *flags]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = []
        self.port = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.log.append(line.rstrip("\n"))
                m = re.search(r"on http://127\.0\.0\.1:(\d+)$", line.strip())
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not ready.wait(start_timeout) or self.port is None:
            self.kill()
            raise RuntimeError("mmrun serve did not start: %s\n%s" % (" ".join(self.cmd), "\n".join(self.log)))
        self.base = "http://127.0.0.1:%d" % self.port
        # Listening is announced just before the accept loop starts: wait for /health.
        deadline = time.time() + 10
        while True:
            try:
                if self.get("/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("mmrun serve does not answer /health")
            time.sleep(0.05)

    def url(self, path=""):
        return self.base + path

    def get(self, path, headers=None):
        req = urllib.request.Request(self.url(path), headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8")

    def post(self, path, body, headers=None):
        """POST raw bytes (or a JSON-able object); returns (status, body text)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        req = urllib.request.Request(self.url(path), data=data, headers=h, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8")

    def metrics(self):
        """/metrics as {"name{labels}": value}, plus {"name": value} for unlabelled samples."""
        status, text = self.get("/metrics")
        assert status == 200, status
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
        return out

    def metric(self, name, **labels):
        m = self.metrics()
        for key, value in m.items():
            if key == name or key.startswith(name + "{"):
                if all('%s="%s"' % (k, v) in key for k, v in labels.items()):
                    return value
        raise KeyError(name)

    def wait_idle(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.metric("mmrun:num_requests_running") == 0 and self.metric("mmrun:num_requests_waiting") == 0:
                return
            time.sleep(0.05)
        raise AssertionError("requests still running after %s s" % timeout)

    def stop(self, timeout=60, send=True):
        """SIGTERM (unless `send` is false: it was sent already); returns the exit code, asserting
        that the server exits within `timeout`."""
        if send and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("mmrun serve did not exit within %s s of SIGTERM\n%s" % (timeout, "\n".join(self.log)))
        self.reader.join(5)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def parse_args(argv):
    """--mmrun PATH --plan PATH --model DIR"""
    args = {}
    it = iter(argv)
    for a in it:
        args[a.lstrip("-")] = next(it)
    for key in ("mmrun", "plan", "model"):
        if key not in args:
            sys.exit("usage: %s --mmrun PATH --plan PLAN --model MODEL_DIR" % sys.argv[0])
    return args


def run_tests(namespace, servers):
    """Runs every test_* function of `namespace` in definition order; kills `servers` at the end."""
    tests = [(name, fn) for name, fn in namespace.items() if name.startswith("test_") and callable(fn)]
    failed = []
    t_all = time.time()
    try:
        for name, fn in tests:
            t0 = time.time()
            try:
                fn()
                print("ok   %-50s %.2f s" % (name, time.time() - t0), flush=True)
            except Exception:
                failed.append(name)
                print("FAIL %s\n%s" % (name, traceback.format_exc()), flush=True)
    finally:
        for s in servers:
            s.kill()
    print("%d tests, %d failed, %.1f s" % (len(tests), len(failed), time.time() - t_all))
    if failed:
        for s in servers:
            print("--- log of", " ".join(s.cmd), "\n" + "\n".join(s.log[-40:]))
        sys.exit(1)
