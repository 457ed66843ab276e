#!/usr/bin/env python3
"""A stand-in kube-apiserver for tests/kubeadm.rs: serves /readyz (and /livez, /healthz) over
HTTPS on --advertise-address:--secure-port with --tls-cert-file/--tls-private-key-file, asking for
(but not requiring) a client certificate signed by --client-ca-file.

/readyz answers 200 "ok" only when `etcd-health` (from PATH) passes against --etcd-servers with
--etcd-cafile/--etcd-certfile/--etcd-keyfile, and 503 otherwise, so it is ready exactly when the
etcd it was configured with serves. Every other kube-apiserver flag is accepted and ignored. It
reads nothing from etcd, and writes nothing.
"""

import http.server
import signal
import ssl
import subprocess
import sys


def flags(argv):
    out = {}
    for a in argv:
        if a.startswith("--") and "=" in a:
            k, v = a[2:].split("=", 1)
            out[k] = v
    return out


def main():
    f = flags(sys.argv[1:])
    health = [
        "etcd-health",
        "--endpoints", f["etcd-servers"],
        "--cacert", f["etcd-cafile"],
        "--cert", f["etcd-certfile"],
        "--key", f["etcd-keyfile"],
        "--dial-timeout", "1s",
        "--command-timeout", "2s",
    ]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path not in ("/readyz", "/livez", "/healthz"):
                self.reply(404, "not found\n")
                return
            r = subprocess.run(health, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            if r.returncode == 0:
                self.reply(200, "ok")
            else:
                self.reply(503, "[-]etcd failed: " + (r.stderr.strip() or r.stdout.strip()) + "\n")

        def reply(self, code, body):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *args):
            sys.stderr.write("kube-apiserver: " + (fmt % args) + "\n")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f["tls-cert-file"], f["tls-private-key-file"])
    if "client-ca-file" in f:
        ctx.load_verify_locations(f["client-ca-file"])
        ctx.verify_mode = ssl.CERT_OPTIONAL
    addr = (f.get("advertise-address", "127.0.0.1"), int(f.get("secure-port", "6443")))
    server = http.server.ThreadingHTTPServer(addr, Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stderr.write(f"kube-apiserver: serving on https://{addr[0]}:{addr[1]}\n")
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
