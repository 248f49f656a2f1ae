#!/usr/bin/env python3
"""A webhook receiver for the alert tests: answers 500 to the first FAILS
requests, 200 to the others, and appends each request as a JSON line
(status answered, Authorization header, body) to LOG. 127.0.0.1 only;
exits after 60 s at most."""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

port, fails, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
seen = {"n": 0}


class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        seen["n"] += 1
        code = 500 if seen["n"] <= fails else 200
        with open(log, "a") as f:
            f.write(json.dumps({"code": code, "auth": self.headers.get("Authorization"),
                                "body": json.loads(body)}) + "\n")
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


srv = HTTPServer(("127.0.0.1", port), H)
threading.Timer(60, srv.shutdown).start()
srv.serve_forever()
