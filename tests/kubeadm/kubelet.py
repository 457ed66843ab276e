#!/usr/bin/env python3
"""A stand-in for the kubelet's static pod handling, for tests/kubeadm.rs.

Every 200 ms it reads every file in --manifests (as the kubelet does with its staticPodPath:
hidden files are ignored), and for each Pod manifest runs spec.containers[0].command + args as a
process, with the command's first word resolved through --bin NAME=PATH (the "image"). When a
manifest disappears or its content changes, the process gets SIGTERM (then SIGKILL after 10 s) and
is reaped; a process that exits while its manifest is there is started again after 1 s
(restartPolicy Always). Each pod's output is appended to --log-dir/<file>.log; what this kubelet
does goes to stderr; --log-dir/containers lists "<container name> <pid>" of every running pod
after each pass (read by the crictl stand-in, tests/kubeadm/bin/crictl).

It stops every process and exits when stdin reaches EOF (the test dropped its handle), on SIGTERM
or SIGINT, and when its parent dies (PR_SET_PDEATHSIG); the processes it starts get SIGKILL when it
dies, so nothing outlives the test.

Not modelled: containers, namespaces, mounts (hostPath volumes are used as they are, so manifests
must name host paths), probes, images, mirror pods, the CRI.
"""

import argparse
import ctypes
import hashlib
import os
import select
import signal
import subprocess
import sys
import time

import yaml

PR_SET_PDEATHSIG = 1
LIBC = ctypes.CDLL(None, use_errno=True)


def log(msg):
    print(f"kubelet: {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def die_with_parent(sig):
    LIBC.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


class Pod:
    def __init__(self, file, digest):
        self.file = file
        self.digest = digest
        self.proc = None
        self.container = file
        self.next_start = 0.0


class Kubelet:
    def __init__(self, manifests, log_dir, bins):
        self.manifests = manifests
        self.log_dir = log_dir
        self.bins = bins
        self.pods = {}

    def command_of(self, path):
        with open(path, "rb") as f:
            doc = yaml.safe_load(f)
        if not isinstance(doc, dict) or doc.get("kind") != "Pod":
            raise ValueError("not a Pod manifest")
        c = doc["spec"]["containers"][0]
        argv = list(c.get("command") or []) + list(c.get("args") or [])
        if not argv:
            raise ValueError("containers[0] has no command")
        name = os.path.basename(argv[0])
        if name not in self.bins:
            raise ValueError(f"no --bin for {name!r} (image {c.get('image')!r})")
        return str(c.get("name", name)), [self.bins[name]] + [str(a) for a in argv[1:]]

    def start(self, pod):
        path = os.path.join(self.manifests, pod.file)
        try:
            pod.container, argv = self.command_of(path)
        except Exception as e:  # a broken manifest is reported and retried, as the kubelet does
            log(f"{pod.file}: cannot run: {e}")
            pod.next_start = time.monotonic() + 1.0
            return
        out = open(os.path.join(self.log_dir, pod.file + ".log"), "ab")
        pod.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: die_with_parent(signal.SIGKILL),
        )
        out.close()
        log(f"{pod.file}: started pid {pod.proc.pid}: {' '.join(argv)}")

    def stop(self, pod, why):
        if pod.proc is None:
            return
        log(f"{pod.file}: stopping pid {pod.proc.pid} ({why})")
        pod.proc.terminate()
        try:
            pod.proc.wait(10)
        except subprocess.TimeoutExpired:
            pod.proc.kill()
            pod.proc.wait()
        log(f"{pod.file}: pid {pod.proc.pid} exited with {pod.proc.returncode}")
        pod.proc = None

    def sync(self):
        seen = {}
        for name in sorted(os.listdir(self.manifests)):
            path = os.path.join(self.manifests, name)
            if name.startswith(".") or not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as f:
                    seen[name] = hashlib.sha256(f.read()).hexdigest()
            except OSError:
                continue
        for name in list(self.pods):
            pod = self.pods[name]
            if seen.get(name) != pod.digest:
                self.stop(pod, "manifest removed" if name not in seen else "manifest changed")
                del self.pods[name]
        now = time.monotonic()
        for name, digest in seen.items():
            pod = self.pods.setdefault(name, Pod(name, digest))
            if pod.proc is not None and pod.proc.poll() is not None:
                log(f"{name}: pid {pod.proc.pid} exited with {pod.proc.returncode}; restarting in 1s")
                pod.proc = None
                pod.next_start = now + 1.0
            if pod.proc is None and now >= pod.next_start:
                self.start(pod)

    def write_state(self):
        """--log-dir/containers: "<container name> <pid>" per running pod, for the crictl stand-in."""
        lines = "".join(
            f"{pod.container} {pod.proc.pid}\n"
            for pod in self.pods.values()
            if pod.proc is not None and pod.proc.poll() is None
        )
        tmp = os.path.join(self.log_dir, ".containers.tmp")
        with open(tmp, "w") as f:
            f.write(lines)
        os.replace(tmp, os.path.join(self.log_dir, "containers"))

    def stop_all(self):
        for pod in self.pods.values():
            self.stop(pod, "kubelet stopping")
        self.pods = {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifests", required=True)
    parser.add_argument("--log-dir", required=True)
    parser.add_argument("--bin", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--parent-pid", type=int, default=0)
    args = parser.parse_args()
    die_with_parent(signal.SIGTERM)
    if args.parent_pid and os.getppid() != args.parent_pid:
        sys.exit("kubelet: the test died before the kubelet started")
    bins = dict(b.split("=", 1) for b in args.bin)
    kubelet = Kubelet(args.manifests, args.log_dir, bins)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log(f"watching {args.manifests}")
    try:
        while True:
            kubelet.sync()
            kubelet.write_state()
            ready, _, _ = select.select([sys.stdin], [], [], 0.2)
            if ready and not os.read(sys.stdin.fileno(), 4096):
                log("stdin closed")
                break
    finally:
        kubelet.stop_all()
        kubelet.write_state()
        log("stopped")


if __name__ == "__main__":
    main()
